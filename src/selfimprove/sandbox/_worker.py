"""The sandbox worker: a small stdlib-only "zygote" process that forks one jailed job per request.

Run as ``python -I -S -B _worker.py CONFIG_JSON`` with a scrubbed environment; it imports its siblings
``_codec``, ``_harness`` and ``_jail`` by path (not the package). At start (sandboxed mode) the zygote enters
a mount namespace of its own and pivots into the minimal read-only root that ``_jail.build_root`` builds
(system directories, the Python prefix, a few /etc entries; nothing else of the host). Per job:

    zygote: setns(own pid ns), unshare(pid) ──fork──> I: pid 1 of a new pid namespace; setsid,
        unshare(mount, net, ipc, uts)
        I: a fresh /proc of its pid namespace and a size-capped tmpfs /tmp (_jail.job_mounts)
        I ──fork──> A: candidate, uid U,   rlimits, own session, cwd /tmp/a (0700)
        I reads the tests from the parent only now, then
        I ──fork──> B: tests,     uid U+1, rlimits, own session, cwd /tmp/b (0700)
        I collects A's output (capped) and B's outcome frames until both are done or the wall deadline,
          writes the result frame straight to the parent, and exits: the kernel then SIGKILLs every process
          left in the pid namespace, daemons included, and the mount namespace with its tmpfs goes away.

Frames (length-prefixed JSON) arrive on fd 0; results leave on fd 1. Exit codes of I: 0 result written,
3 failed before reading the tests frame, 4 failed after.
"""

import ctypes
import gc
import json
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time

sys.dont_write_bytecode = True
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import _codec
import _harness
import _jail

sys.path.remove(_HERE)

PRELOAD = ("math", "re", "collections", "itertools", "functools", "heapq", "string", "typing", "random",
           "bisect", "copy", "hashlib", "fractions", "decimal", "statistics", "datetime", "json", "numbers",
           "array", "textwrap", "unicodedata", "dataclasses", "enum", "cmath", "queue", "io", "struct")
"""Imported once in the zygote so that each forked candidate starts with them loaded (speed only)."""

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
_libc = ctypes.CDLL(None, use_errno=True)
_check = _jail.check
_STATE = {"tests_read": False}


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl {option}")


# ------------------------------------------------------------------------------------------ a job's processes

def _child_setup(uid: int | None, workdir: str, fds: list[int], lim: dict) -> None:
    """In a freshly forked A or B: own session, only ``fds`` open (as 0..n-1), limits, then drop to
    ``uid``."""
    os.setsid()
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    high = [os.dup(fd) if fd >= 0 else -1 for fd in fds]
    for target, fd in enumerate(high):
        os.dup2(fd, target) if fd >= 0 else os.close(target)
    os.closerange(len(fds), 1 << 16)
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
                       "LANG": "C.UTF-8"})
    mb = 1024 * 1024
    for res, soft, hard in ((resource.RLIMIT_CPU, lim["cpu_s"], lim["cpu_s"] + 1),
                            (resource.RLIMIT_AS, lim["memory_mb"] * mb, lim["memory_mb"] * mb),
                            (resource.RLIMIT_FSIZE, lim["file_mb"] * mb, lim["file_mb"] * mb),
                            (resource.RLIMIT_NOFILE, lim["open_files"], lim["open_files"]),
                            (resource.RLIMIT_NPROC, lim["processes"], lim["processes"]),
                            (resource.RLIMIT_CORE, 0, 0)):
        resource.setrlimit(res, (int(soft), int(hard)))
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def _spawn(uid, workdir, fds, lim, body) -> int:
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            _child_setup(uid, workdir, fds, lim)
            code = body()
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
        except BaseException as e:  # noqa: BLE001 — the child must always end in _exit
            try:
                os.write(2, f"sandbox: {type(e).__name__}: {e}\n".encode())
            except OSError:
                pass
        os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)
    return pid


# ----------------------------------------------------------------------------------------------- one job

class _Collector:
    """Reads the job's pipes with caps until the processes that matter are done or the deadline passes."""

    def __init__(self, lim: dict) -> None:
        self.cap = int(lim["output_bytes"])
        self.bufs: dict[int, bytearray] = {}
        self.exceeded = False

    def read(self, fd: int) -> bool:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            return False
        buf = self.bufs.setdefault(fd, bytearray())
        buf += data
        if len(buf) > self.cap:
            del buf[self.cap:]
            self.exceeded = True
        return True


def _frames(data: bytes) -> list:
    out, pos = [], 0
    while pos + 4 <= len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        if pos + 4 + n > len(data):
            break
        out.append(json.loads(data[pos + 4:pos + 4 + n]))
        pos += 4 + n
    return out


class _Procs:
    """The running job: pids of A (and B) and the parent's ends of their pipes."""

    pa: int
    pb: int | None = None
    a_out: int = -1
    a_err: int = -1
    res: int = -1
    b_err: int = -1
    n_tests: int = 0


def _workdirs(cfg: dict, job: dict) -> tuple[str, str, str, int | None, int | None]:
    """(base, A's dir, B's dir, A's uid, B's uid): the job's private tree, with the stdin file in it."""
    if cfg["sandboxed"]:
        _jail.job_mounts(job["limits"]["tmp_mb"])
        base, uid_a, uid_b = "/tmp", cfg["uid_base"], cfg["uid_base"] + 1
    else:
        base, uid_a, uid_b = tempfile.mkdtemp(prefix="selfimprove-sbx-"), None, None
    adir, bdir = os.path.join(base, "a"), os.path.join(base, "b")
    for d, uid in ((adir, uid_a), (bdir, uid_b)):
        os.mkdir(d, 0o700)
        if uid is not None:
            os.chown(d, uid, uid)
    with open(os.path.join(base, "stdin"), "w", encoding="utf-8") as f:
        f.write(job.get("stdin", ""))
    os.chmod(os.path.join(base, "stdin"), 0o644)
    return base, adir, bdir, uid_a, uid_b


def _start(job: dict, base: str, adir: str, bdir: str, uid_a, uid_b) -> _Procs:
    """Fork A; only then read the tests from the parent and fork B. The child ends of the pipes are closed."""
    lim, has_tests = job["limits"], job["has_tests"]
    a_out, a_err = os.pipe(), os.pipe()
    call, ret = (os.pipe(), os.pipe()) if has_tests else ((-1, -1), (-1, -1))
    stdin_fd = os.open(os.path.join(base, "stdin"), os.O_RDONLY)
    path = os.path.join(adir, "solution.py")
    procs = _Procs()
    procs.pa = _spawn(uid_a, adir, [stdin_fd, a_out[1], a_err[1], call[0], ret[1]], lim,
                      lambda: _harness.candidate_main(job["code"], path, 3 if has_tests else None,
                                                      4 if has_tests else None))
    procs.a_out, procs.a_err = a_out[0], a_err[0]
    for fd in (stdin_fd, a_out[1], a_err[1], call[0], ret[1]):
        if fd >= 0:
            os.close(fd)
    if has_tests:
        spec = _codec.read_frame(0)  # read only now: A's memory never held the tests
        _STATE["tests_read"] = True
        tests = [str(t) for t in spec["tests"]]
        procs.n_tests = len(tests)
        res, b_err = os.pipe(), os.pipe()
        devnull = os.open(os.devnull, os.O_RDWR)
        procs.pb = _spawn(uid_b, bdir, [devnull, devnull, b_err[1], call[1], ret[0], res[1]], lim,
                          lambda: _harness.tests_main(str(spec.get("setup", "")), tests, 3, 4, 5))
        procs.res, procs.b_err = res[0], b_err[0]
        del spec, tests
        for fd in (devnull, b_err[1], call[1], ret[0], res[1]):
            os.close(fd)
    return procs


def _reap(exits: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        exits[pid] = os.waitstatus_to_exitcode(status)


def _collect(procs: _Procs, lim: dict, wake_r: int, t0: float) -> tuple[_Collector, _Collector, dict, bool]:
    """Read the job's pipes until the process that decides is done (B with tests, else A) and the outcome
    pipe is drained, or the deadline passes. Returns (output, outcomes, exit codes, timed out)."""
    col, results = _Collector(lim), _Collector({"output_bytes": 8 * 1024 * 1024})
    open_fds = {fd for fd in (procs.a_out, procs.a_err, procs.res, procs.b_err) if fd >= 0}
    for fd in open_fds:
        os.set_blocking(fd, False)
    exits: dict[int, int] = {}
    deciding = procs.pb if procs.pb is not None else procs.pa
    deadline = t0 + float(lim["wall_s"])

    def reader(fd: int) -> _Collector:
        return results if fd == procs.res else col

    timed_out = False
    while deciding not in exits or procs.res in open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([*open_fds, wake_r], [], [], left)
        for fd in ready:
            if fd == wake_r:
                os.read(wake_r, 4096)
            elif not reader(fd).read(fd):
                open_fds.discard(fd)
        _reap(exits)
        if col.exceeded and procs.pa not in exits:
            os.kill(procs.pa, signal.SIGKILL)
    for fd in list(open_fds):  # whatever is already buffered, without waiting for lingering writers
        while select.select([fd], [], [], 0)[0] and reader(fd).read(fd):
            pass
    return col, results, exits, timed_out


def _run_job(cfg: dict, job: dict) -> int:
    base, adir, bdir, uid_a, uid_b = _workdirs(cfg, job)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    t0 = time.monotonic()
    procs = _start(job, base, adir, bdir, uid_a, uid_b)
    col, results, exits, timed_out = _collect(procs, job["limits"], wake_r, t0)
    wall = time.monotonic() - t0
    if not cfg["sandboxed"]:  # no pid namespace to tear down: kill the sessions, remove the directory
        for pid in (procs.pa, procs.pb):
            if pid is not None:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(base, ignore_errors=True)
    try:
        outcomes = _frames(bytes(results.bufs.get(procs.res, b"")))
    except ValueError:
        outcomes = []
    text = (lambda fd: bytes(col.bufs.get(fd, b"")).decode("utf-8", "replace"))
    _codec.write_frame(1, {
        "exit_code": exits.get(procs.pa), "timed_out": timed_out, "output_exceeded": col.exceeded,
        "stdout": text(procs.a_out), "stderr": text(procs.a_err), "n_tests": procs.n_tests, "tests": outcomes,
        "test_stderr": text(procs.b_err)[-4000:] if procs.pb is not None else "", "wall_s": round(wall, 4)})
    return 0


# ----------------------------------------------------------------------------------------------- zygote

def _job_process(cfg: dict, job: dict) -> None:
    """I: pid 1 of the job's fresh pid namespace (sandboxed) or just the job's leader (unsafe). Never
    returns."""
    code = 3
    try:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.setsid()
        if cfg["sandboxed"]:
            _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
        code = _run_job(cfg, job)
    except BaseException as e:  # noqa: BLE001 — this process must always end in _exit
        code = 4 if _STATE["tests_read"] else 3
        try:
            os.write(2, f"sandbox worker: {type(e).__name__}: {e}\n".encode())
        except OSError:
            pass
    os._exit(code)


def _fork_job(cfg: dict, pid_ns_fd: int | None) -> int:
    """Fork the job's init. Sandboxed, its child is pid 1 of a new pid namespace: returning to our own
    namespace first (setns) lets one zygote start a fresh pid namespace per job without an extra fork."""
    if cfg["sandboxed"]:
        _check(_libc.setns(pid_ns_fd, CLONE_NEWPID), "setns")
        _check(_libc.unshare(CLONE_NEWPID), "unshare pid")
    return os.fork()


def _probe(cfg: dict, pid_ns_fd: int | None) -> str | None:
    """Why jailed jobs cannot run here, or None when they can."""
    if not cfg["sandboxed"]:
        return None
    try:
        pid = _fork_job(cfg, pid_ns_fd)
    except OSError as e:
        return f"unshare of a pid namespace failed: {e.strerror}"
    if pid == 0:
        try:
            _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
            _jail.job_mounts(1)
        except OSError as e:
            os.write(2, f"{e.strerror}\n".encode())
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return None if os.waitstatus_to_exitcode(status) == 0 else "unshare/mount of new namespaces failed"


def _discard_frame() -> None:
    """Read and drop the next frame in a throwaway child, so its bytes (tests) never enter this process's
    memory, which every later job inherits."""
    pid = os.fork()
    if pid == 0:
        try:
            _codec.read_frame(0)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != cfg["parent_pid"]:
        os._exit(1)
    for name in PRELOAD:
        __import__(name)
    gc.freeze()  # forked jobs then do not dirty (copy) the zygote's pages when their collector runs
    pid_ns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY) if cfg["sandboxed"] else None
    why = None
    if cfg["sandboxed"] and os.geteuid() != 0:
        why = "it must run as root to enter namespaces and drop to an unprivileged uid"
    elif cfg["sandboxed"]:
        try:
            _jail.build_root(cfg["expose"], cfg["hide"])
        except OSError as e:
            why = f"building the jail's root failed: {e.strerror or e}"
    why = why or _probe(cfg, pid_ns_fd)
    _codec.write_frame(1, {"ready": why is None, "error": why})
    if why is not None:
        return
    while True:
        try:
            job = _codec.read_frame(0)
        except EOFError:
            return
        _STATE["tests_read"] = False
        try:
            pid = _fork_job(cfg, pid_ns_fd)
        except OSError as e:
            if job["has_tests"]:
                _discard_frame()
            _codec.write_frame(1, {"error": f"sandbox: {e.strerror}"})
            continue
        if pid == 0:
            if pid_ns_fd is not None:
                os.close(pid_ns_fd)
            _job_process(cfg, job)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            if code == 3 and job["has_tests"]:
                _discard_frame()  # the tests frame nobody read
            _codec.write_frame(1, {"error": f"sandbox job process failed (exit status {code})"})


if __name__ == "__main__":
    main()
