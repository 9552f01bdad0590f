"""The parent side of the sandbox: typed limits and jobs, and a pool of pre-started worker processes.

``Sandbox.run(jobs)`` sends each job to a worker (a small stdlib-only zygote, see ``_worker.py``) and
returns one ``RunResult`` per job, in order. The verdict is computed here from plain data: a job with tests
passes only when the test process reported a pass for *every* test index the parent sent, the job did not
time out and its output stayed under the cap.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import select
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import UserError
from . import _codec

_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")


class SandboxUnavailable(UserError):
    """Jailed execution is impossible here and ``unsafe_exec`` was not given."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one job (each of the candidate and test processes gets them)."""

    wall_s: float = 10.0
    """Wall-clock deadline of the whole job; then every process of the job is SIGKILLed."""
    cpu_s: int = 10
    """CPU seconds per process (RLIMIT_CPU)."""
    memory_mb: int = 1024
    """Address space per process in MiB (RLIMIT_AS)."""
    file_mb: int = 16
    """Largest file a process may write, MiB (RLIMIT_FSIZE)."""
    tmp_mb: int = 32
    """Size of the job's private tmpfs working area, MiB."""
    open_files: int = 64
    """Open file descriptors per process (RLIMIT_NOFILE)."""
    processes: int = 16
    """Processes and threads per sandbox uid (RLIMIT_NPROC): a fork bomb stops here."""
    output_bytes: int = 65536
    """Bytes of stdout and of stderr kept; past this the candidate is killed and the job fails."""

    def __post_init__(self) -> None:
        for name in ("wall_s", "cpu_s", "memory_mb", "file_mb", "tmp_mb", "open_files", "processes",
                     "output_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be > 0, got {getattr(self, name)}; raise it")
        if self.open_files < 8:
            raise ValueError(f"Limits.open_files must be >= 8 (the harness needs 6), got {self.open_files}")


@dataclass(frozen=True)
class Job:
    """One program to run. With ``tests`` the program is loaded and each test calls into it."""

    code: str
    """The untrusted program (e.g. the prompt plus the model's completion)."""
    tests: tuple[str, ...] = ()
    """Test snippets run one by one in a separate process, e.g. ``assert add(1, 2) == 3``; empty: script
    mode."""
    setup: str = ""
    """Code run in the test process before the tests (imports, a ``check`` function)."""
    stdin: str = ""
    """Text given to the program on standard input."""

    def __post_init__(self) -> None:
        if not isinstance(self.code, str):
            raise TypeError(f"Job.code must be a str, got {type(self.code).__name__}")
        object.__setattr__(self, "tests", tuple(self.tests))


@dataclass(frozen=True)
class TestOutcome:
    """What the test process reported for one test."""

    index: int
    passed: bool
    error: str | None = None


@dataclass(frozen=True)
class RunResult:
    """What happened to one job, read by the parent from plain data."""

    status: str
    """'passed', 'failed' (a test failed, or the script exited non-zero), 'timeout', 'output-limit',
    'error'."""
    exit_code: int | None = None
    """The candidate process's exit status (negative: killed by that signal); None if unknown."""
    stdout: str = ""
    stderr: str = ""
    tests: tuple[TestOutcome, ...] = ()
    """One outcome per test index sent; a test with no report counts as failed ('no result')."""
    wall_s: float = 0.0
    sandboxed: bool = True
    """False when the run used --unsafe-exec: reports must say so."""
    error: str | None = None
    info: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def n_passed(self) -> int:
        return sum(t.passed for t in self.tests)

    def feedback(self, max_chars: int = 1500) -> str:
        """A short account of what went wrong, in the words a self-debugging prompt can use."""
        if self.status == "passed":
            return "All tests passed."
        lines = {"timeout": ["The program did not finish before the time limit."],
                 "output-limit": ["The program printed more output than allowed."]}.get(self.status, [])
        lines += [f"Test {t.index + 1} failed: {t.error}" for t in self.tests if not t.passed]
        if self.stderr.strip():
            lines.append("Error output:\n" + self.stderr.strip()[-800:])
        if self.error:
            lines.append(self.error)
        return "\n".join(lines)[:max_chars] or f"The program failed ({self.status})."


def _verdict(job: Job, raw: dict, sandboxed: bool) -> RunResult:
    if "error" in raw and "stdout" not in raw:
        return RunResult("error", error=str(raw["error"]), sandboxed=sandboxed)
    reported: dict[int, TestOutcome] = {}
    for item in raw.get("tests", []):
        if (type(item) is dict and type(item.get("i")) is int and 0 <= item["i"] < len(job.tests)
                and type(item.get("ok")) is bool and item["i"] not in reported):
            err = item.get("error")
            reported[item["i"]] = TestOutcome(item["i"], item["ok"], None if err is None else str(err))
    outcomes = tuple(reported.get(i, TestOutcome(i, False, "no result (the job ended first)"))
                     for i in range(len(job.tests)))
    if raw.get("timed_out"):
        status = "timeout"
    elif raw.get("output_exceeded"):
        status = "output-limit"
    elif job.tests:
        status = "passed" if all(t.passed for t in outcomes) else "failed"
    else:
        status = "passed" if raw.get("exit_code") == 0 else "failed"
    return RunResult(status, exit_code=raw.get("exit_code"), stdout=str(raw.get("stdout", "")),
                     stderr=str(raw.get("stderr", "")), tests=outcomes, wall_s=float(raw.get("wall_s", 0.0)),
                     sandboxed=sandboxed, info={"test_stderr": raw.get("test_stderr", "")})


_SYSTEM_DIRS = {"", "bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run", "sbin",
                "sys",
                "tmp", "usr", "var"}


def _top_level(path: str) -> str:
    """The top-level directory holding ``path`` (e.g. /work for /work/project), unless it is a system one."""
    parts = os.path.realpath(path).split("/")
    return path if len(parts) < 2 or parts[1] in _SYSTEM_DIRS else "/" + parts[1]


class _Worker:
    def __init__(self, sandboxed: bool, hide: Sequence[str]) -> None:
        expose = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)})
        cfg = {"sandboxed": sandboxed, "uid_base": random.randrange(1 << 20, 1 << 30, 2),
               "hide": [os.path.realpath(h) for h in hide], "expose": expose, "parent_pid": os.getpid()}
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen([sys.executable, "-I", "-S", "-B", _WORKER, json.dumps(cfg)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     start_new_session=True, close_fds=True, cwd="/")

    def wait_ready(self) -> None:
        """Wait for the worker's hello; SandboxUnavailable (with the reason) when it cannot jail jobs."""
        hello = self._read(30.0)
        if hello is None or not hello.get("ready"):
            self.close()
            why = None if hello is None else hello.get("error")
            raise SandboxUnavailable(
                f"cannot run candidate code in a sandbox here: {why or 'the sandbox worker did not start'}. "
                "The sandbox needs Linux, root (or CAP_SYS_ADMIN) and unshare(2) of network, pid and mount "
                "namespaces. Run where that is allowed, or pass --unsafe-exec to run candidate code WITHOUT "
                "isolation (every report will say so).")

    def _read(self, timeout: float):
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return None
        try:
            return _codec.read_frame(fd)
        except (EOFError, _codec.ProtocolError):
            return None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, job: Job, limits: Limits) -> dict | None:
        head = {"code": job.code, "stdin": job.stdin, "has_tests": bool(job.tests),
                "limits": {k: getattr(limits, k) for k in Limits.__dataclass_fields__}}
        try:
            _codec.write_frame(self.proc.stdin.fileno(), head)
            if job.tests:
                _codec.write_frame(self.proc.stdin.fileno(), {"setup": job.setup, "tests": list(job.tests)})
        except (BrokenPipeError, OSError):
            return None
        return self._read(limits.wall_s + 10.0)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class Sandbox:
    """A pool of sandbox workers. Use as a context manager, or call ``close()``.

    ``unsafe_exec=True`` runs jobs without namespaces or uid drop (each result then has ``sandboxed=False``);
    it is never chosen silently.
    """

    def __init__(self, limits: Limits | None = None, workers: int | None = None, unsafe_exec: bool = False,
                 hide: Sequence[str] = ()) -> None:
        self.limits = limits or Limits()
        self.sandboxed = not unsafe_exec
        self.n_workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.hide = ["/root", "/home", _top_level(os.getcwd()), *hide]
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._ensure()

    def _ensure(self) -> None:
        with self._lock:
            for w in [w for w in self._all if not w.alive()]:
                self._all.remove(w)
                w.close()
            fresh = [_Worker(self.sandboxed, self.hide) for _ in range(self.n_workers - len(self._all))]
            try:  # started together, then waited for: their start-up overlaps
                for w in fresh:
                    w.wait_ready()
            except SandboxUnavailable:
                for w in fresh:
                    w.close()
                raise
            for w in fresh:
                self._all.append(w)
                self._idle.put(w)

    def _one(self, job: Job) -> RunResult:
        worker = self._idle.get()
        raw = worker.run(job, self.limits)
        if raw is not None and worker.alive():
            self._idle.put(worker)
            return _verdict(job, raw, self.sandboxed)
        worker.close()  # it hung or died: replace it, and report this job as an error
        with self._lock:
            self._all.remove(worker)
            fresh = _Worker(self.sandboxed, self.hide)
            fresh.wait_ready()
            self._all.append(fresh)
        self._idle.put(fresh)
        return RunResult("error", error="the sandbox worker failed; it was restarted",
                         sandboxed=self.sandboxed)

    def run(self, jobs: Sequence[Job]) -> list[RunResult]:
        """Run every job; one result per job, in order."""
        self._ensure()
        if len(jobs) <= 1 or self.n_workers == 1:
            return [self._one(job) for job in jobs]
        with ThreadPoolExecutor(self.n_workers) as pool:
            return list(pool.map(self._one, jobs))

    def close(self) -> None:
        with self._lock:
            for w in self._all:
                w.close()
            self._all.clear()

    def __enter__(self) -> Sandbox:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()
