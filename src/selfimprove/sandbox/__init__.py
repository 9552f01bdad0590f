"""Running untrusted code: a fresh jailed process per candidate, and a verdict it cannot forge.

Threat model
------------
Candidate programs (model-written code, model-written tests) are treated as hostile. Each job runs in
fresh child processes of a pre-started worker, in new **network** (no interfaces, not even loopback),
**pid**, **mount**, IPC and UTS namespaces, as an unprivileged uid of its own (the tests as another uid),
with ``no_new_privs``, in a private tmpfs working directory that disappears with the job, with a scrubbed
environment, rlimits (CPU seconds, address space, file size, open files, processes) and a wall deadline.
When the job ends, its pid-namespace init exits and the kernel SIGKILLs every process left in it: daemons,
double-forked children and fork bombs included.

What it stops: network access (TCP/UDP/DNS to anywhere, including 127.0.0.1); reading the parent's
environment (API keys); reading any file outside an allowlist: the worker pivots into a minimal read-only root
that holds only /usr and the /lib*, /bin, /sbin links, the Python prefix (its parent directories hold nothing
else), five /etc entries (the dynamic linker's cache and the time zone), five /dev nodes, and each job's fresh
/proc and /tmp (``_jail.py``): home directories, the project, data folders, /var, /run, /sys, /opt, /srv,
/mnt, any other top-level folder and the rest of /etc are absent; writing anywhere but its own tmpfs
directory; signalling or tracing the parent, the test process or other jobs; leaving processes or files
behind; exhausting the machine's memory, disk, processes or time beyond the limits; forging a pass. The
verdict is computed by the parent from plain data: the tests run in a separate process that the candidate
cannot signal, trace or write to, and that calls the candidate's functions over a pipe whose replies are
decoded into exact builtin values (an object whose ``__eq__`` is always True cannot cross it). The tests reach
that process only after the candidate has been forked, so the candidate never holds them (they never enter the
worker's memory either; a candidate can find earlier candidates' *programs* in the memory it inherits from the
worker, never tests). ``sys.exit(0)``, printing "PASSED", raising SystemExit, monkeypatching ``assert`` or
``unittest`` and writing a result file all only affect the candidate's own process.

What it does not stop: kernel exploits (this is not a VM or gVisor; the candidate shares the host kernel,
and seccomp is not used); reading world-readable files under ``/usr`` and the Python prefix (installed
software, which may include a site-packages folder inside the prefix); side channels such as
timing; CPU and memory contention with other jobs within the limits. Model-written *tests* are trusted to
mean what they say: a test that passes trivially (``assert True``) passes. Candidates run on the worker's
Python with the standard library only (no site-packages).

Requirements: Linux, root (or CAP_SYS_ADMIN) and ``unshare`` of those namespaces. Where that is impossible
the sandbox refuses to start with a message saying so, unless ``unsafe_exec=True`` (``--unsafe-exec`` on the
command line), which keeps the limits, deadline and separate processes but no isolation; every result and
report then shows ``sandboxed=False``.
"""

from .pool import Job, Limits, RunResult, Sandbox, SandboxUnavailable, TestOutcome

__all__ = ["Job", "Limits", "RunResult", "Sandbox", "SandboxUnavailable", "TestOutcome"]
