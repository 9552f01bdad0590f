"""The hostile program suite: every program runs 10 times; 0 escapes, 0 leftovers, every verdict right.

All programs run in one batch over 4 workers with a 0.6 s deadline, so the suite costs seconds. Network
tests aim at 127.0.0.1 (a listener this test owns, which must see no connection), at 192.0.2.1 (a
documentation-only address, RFC 5737, routed nowhere) and at one public address literal, which the program
tries only after checking that it sees no network interface but loopback: nothing can leave the machine even
if the namespace were broken.
"""

from __future__ import annotations

import os
import socket
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from selfimprove.sandbox import Job, Limits, Sandbox, SandboxUnavailable

RUNS = 10
NONCE = uuid.uuid4().hex[:12]
SECRET = f"sk-test-{NONCE}"
ESCAPE_MARK = f"/tmp/si-escape-{NONCE}"
REPO = Path(__file__).resolve().parents[1]
NEIGHBOUR = REPO.parent / "shared" / "README.md"  # outside the project, in its top-level folder (hidden)
TOP = "/" + REPO.parts[1]  # the top-level folder of the checkout, which the sandbox hides
PREFIX = os.path.realpath(sys.base_prefix)  # shown to candidates (read-only); its siblings are not
MARKERS = [f"/si-hostile-{NONCE}/secret.txt", f"/si-hostile-{NONCE}.txt", f"/var/tmp/si-hostile-{NONCE}",
           f"/srv/si-hostile-{NONCE}", f"/mnt/si-hostile-{NONCE}", f"/opt/si-hostile-{NONCE}",
           f"/etc/si-hostile-{NONCE}.env", f"{os.path.dirname(PREFIX)}/si-hostile-{NONCE}"]
"""Files this test writes (as root) before the sandbox starts, in a new top-level folder, at the top level, in
other top-level folders, in /etc and beside the Python prefix: no candidate may read any of them."""
SHOWN_TOP = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr"}
SHOWN_ETC = {"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone"}
SHOWN_DEV = {"null", "zero", "full", "random", "urandom", "fd", "stdin", "stdout", "stderr"}

WRONG_ADD = "def add(a, b):\n    return a - b\n"
ADD_TESTS = ("assert add(1, 2) == 3", "assert add(-1, 1) == 0")


def _p(src: str) -> str:
    return textwrap.dedent(src).strip() + "\n"


def programs(port: int) -> dict[str, tuple[Job, str, tuple[str, ...]]]:
    """name -> (job, expected status, strings that must NOT appear in the candidate's stdout)."""
    leak = ("LEAK", SECRET)
    return {
        # resource exhaustion
        "fork_bomb": (Job(_p("""
            import os
            while True:
                try:
                    os.fork()
                except OSError:
                    pass""")), "timeout", ()),
        "thread_bomb": (Job(_p("""
            import threading, time
            ts = [threading.Thread(target=time.sleep, args=(30,)) for _ in range(2000)]
            for t in ts: t.start()""")), "failed", ()),
        "memory_hog": (Job("x = bytearray(8 * 1024 ** 3)\n"), "failed", ()),
        "memory_creep": (Job(_p("""
            chunks = []
            while True:
                chunks.append(bytearray(16 * 1024 * 1024))""")), ("failed", "timeout"), ()),
        "disk_filler_one_file": (Job(_p("""
            with open('big', 'wb') as f:
                while True:
                    f.write(b'x' * 1024 * 1024)""")), "failed", ()),
        "disk_filler_many_files": (Job(_p("""
            i = 0
            while True:
                with open(f'f{i}', 'wb') as f:
                    f.write(b'x' * 512 * 1024)
                i += 1""")), "failed", ()),
        "open_files": (Job("fs = [open('/dev/null') for _ in range(100000)]\n"), "failed", ()),
        "infinite_loop": (Job("while True:\n    pass\n"), "timeout", ()),
        "sleep": (Job("import time\ntime.sleep(3600)\n"), "timeout", ()),
        "ignore_signals": (Job(_p("""
            import signal
            for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):
                signal.signal(s, signal.SIG_IGN)
            while True:
                pass""")), "timeout", ()),
        "huge_stdout": (Job("while True:\n    print('x' * 10000)\n"), "output-limit", ()),
        "huge_stderr": (Job("import sys\nwhile True:\n    sys.stderr.write('y' * 10000)\n"), "output-limit",
                        ()),
        # network
        "connect_localhost": (Job(_p(f"""
            import socket
            s = socket.socket(); s.settimeout(1)
            s.connect(('127.0.0.1', {port}))
            print('LEAK connected')""")), "failed", leak),
        "connect_public_literal": (Job(_p("""
            import socket
            s = socket.socket(); s.settimeout(1)
            s.connect(('192.0.2.1', 80))
            print('LEAK connected')""")), "failed", leak),
        "connect_public_internet": (Job(_p("""
            import socket
            # never reach outside, even if the namespace were broken: give up unless there is no interface
            names = [name for _, name in socket.if_nameindex() if name != 'lo']
            if names:
                print('LEAK interfaces', names)
                raise SystemExit(1)
            s = socket.socket(); s.settimeout(1)
            s.connect(('1.1.1.1', 443))
            print('LEAK connected')""")), "failed", leak),
        "udp_send": (Job(_p("""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b'x', ('192.0.2.1', 53))
            print('LEAK sent')""")), "failed", leak),
        "dns_lookup": (Job(_p("""
            import socket
            print('LEAK', socket.getaddrinfo('example.com', 80))""")), "failed", leak),
        # secrets and files
        "env_secrets": (Job(_p("""
            import os, glob
            print(dict(os.environ))
            for p in ['/proc/self/environ', '/proc/1/environ'] + glob.glob('/proc/*/environ'):
                try:
                    print(open(p, 'rb').read())
                except OSError:
                    pass""")), "passed", leak),
        "read_outside": (Job(_p(f"""
            found = []
            for p in ['{REPO / "pyproject.toml"}', '/root/.bashrc', '{NEIGHBOUR}',
                      '/proc/1/root/etc/hostname']:
                try:
                    open(p).read(); found.append(p)
                except OSError:
                    pass
            print('LEAK' if found else 'nothing', found)""")), "passed", leak),
        "read_markers": (Job(_p(f"""
            import os
            found = [p for p in {MARKERS!r} if os.path.exists(p)]
            for p in {MARKERS!r}:
                try:
                    found.append(open(p).read())
                except OSError:
                    pass
            print('LEAK' if found else 'nothing', found)""")), "passed", leak + (NONCE,)),
        "list_top_level": (Job(_p(f"""
            import os, sys
            # only system folders at the top; above the Python prefix, only the path down to it
            extra = set(os.listdir('/')) - {SHOWN_TOP!r}
            parts = {PREFIX!r}.strip('/').split('/')
            allowed = {{parts[0]}} if parts[0] not in {SHOWN_TOP!r} else set()
            if extra - allowed:
                print('LEAK top level', sorted(extra - allowed))
            for depth in range(1, len(parts)):
                d = '/' + '/'.join(parts[:depth])
                if d.lstrip('/').split('/')[0] in {SHOWN_TOP!r}:
                    break
                if os.listdir(d) != [parts[depth]]:
                    print('LEAK beside the prefix', d, os.listdir(d))
            for d, shown in (('/etc', {SHOWN_ETC!r}), ('/dev', {SHOWN_DEV!r})):
                if set(os.listdir(d)) - shown:
                    print('LEAK in', d, sorted(set(os.listdir(d)) - shown))
            for d in ('/home', '/root/.ssh', '/var', '/run', '/sys', '/opt', '/srv', '/mnt', '/media',
                      '/boot', {TOP!r}, '/etc/passwd', '/etc/hostname', '/etc/environment', '/dev/shm',
                      '/dev/mem'):
                if os.path.exists(d):
                    print('LEAK exists', d)
            import json, decimal, sqlite3, ssl, time  # the standard library still works
            print('ok', time.localtime().tm_year > 2000)""")), "passed", leak),
        "write_outside": (Job(_p(f"""
            import os
            wrote = []
            for p in ['{ESCAPE_MARK}', '/var/tmp/si-escape-{NONCE}', '/dev/shm/si-escape-{NONCE}',
                      '/etc/si-escape-{NONCE}', '{REPO}/si-escape-{NONCE}', '/tmp/b/x', '/tmp/x']:
                try:
                    open(p, 'w').write('x'); wrote.append(p)
                except OSError:
                    pass
            print('LEAK' if wrote else 'nothing', wrote)""")), "passed", leak),
        "become_root": (Job(_p("""
            import os
            for f in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.chroot('/')):
                try:
                    f(); print('LEAK root')
                except OSError:
                    pass""")), "passed", leak),
        "unmount_hidden": (Job(_p(f"""
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            libc.unshare(0x10000000 | 0x00020000)  # a user + mount namespace of its own, if allowed
            for p in ({TOP!r}.encode(), b'/root', b'/tmp'):
                if libc.umount2(p, 2) == 0:
                    print('LEAK unmounted', p)
            if os.path.exists({str(NEIGHBOUR)!r}) or os.path.exists({str(REPO / "pyproject.toml")!r}):
                print('LEAK sees the checkout or its neighbours')""")), "passed", leak),
        # processes
        "kill_parent": (Job(_p("""
            import os, signal
            for pid in [os.getppid(), 1] + list(range(2, 300)):
                if pid == os.getpid():
                    continue
                try:
                    os.kill(pid, signal.SIGKILL); print('LEAK killed', pid)
                except OSError:
                    pass""")), "passed", leak),
        "daemon_child": (Job(_p(f"""
            import os, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(0.3)
                    open('{ESCAPE_MARK}-daemon', 'w').write('x')
                    time.sleep(3600)
                os._exit(0)
            print('parent done')""")), "passed", ()),
        "deep_recursion_crash": (Job(_p("""
            import sys
            sys.setrecursionlimit(10 ** 8)
            def f(n):
                return f(n + 1) + 1
            f(0)""")), ("failed", "timeout"), ()),
        "recursive_import": (Job(_p("""
            import sys
            sys.path.insert(0, '.')
            open('loopmod.py', 'w').write('import sys\\nsys.modules.pop("loopmod", None)\\nimport loopmod\\n')
            import loopmod""")), "failed", ()),
        "shadow_stdlib": (Job(_p("""
            import sys
            open('json.py', 'w').write('raise SystemExit(0)\\n')
            sys.path.insert(0, '.')
            sys.modules.pop('json', None)
            import json
            print('LEAK imported')""") + WRONG_ADD, tests=ADD_TESTS), "failed", ("LEAK",)),
        # forgeries: a wrong add() must fail whatever else the program does
        "forge_sys_exit": (Job(WRONG_ADD + "import sys\nsys.exit(0)\n", tests=ADD_TESTS), "failed", ()),
        "forge_print_passed": (Job(WRONG_ADD + "print('PASSED'); print('All tests passed')\n",
                                   tests=ADD_TESTS),
                               "failed", ()),
        "forge_systemexit_in_test": (Job("def add(a, b):\n    raise SystemExit(0)\n", tests=ADD_TESTS),
                                     "failed", ()),
        "forge_os_exit_in_test": (Job("import os\ndef add(a, b):\n    os._exit(0)\n", tests=ADD_TESTS),
                                  "failed", ()),
        "forge_monkeypatch_assert": (Job(WRONG_ADD + _p("""
            import builtins, unittest
            builtins.AssertionError = type('Nope', (Exception,), {})
            unittest.TestCase.assertEqual = lambda *a, **k: None
            builtins.__import__ = lambda *a, **k: None"""), tests=ADD_TESTS), "failed", ()),
        "forge_eq_always_true": (Job(_p("""
            class Anything:
                def __eq__(self, other):
                    return True
                __ne__ = lambda self, other: False
            def add(a, b):
                return Anything()"""), tests=ADD_TESTS), "failed", ()),
        "forge_int_subclass": (Job(_p("""
            class Int(int):
                def __eq__(self, other):
                    return True
            def add(a, b):
                return Int(0)"""), tests=ADD_TESTS), "failed", ()),
        "forge_result_file": (Job(WRONG_ADD + _p("""
            import json, os
            for d in ('.', '/tmp', '/tmp/b', '..'):
                for name in ('result.json', 'results.json', 'verdict'):
                    try:
                        open(os.path.join(d, name), 'w').write(json.dumps({'passed': True}))
                    except OSError:
                        pass"""), tests=ADD_TESTS), "failed", ()),
        "forge_protocol_frames": (Job(WRONG_ADD + _p("""
            import json, os, struct
            for fd in range(3, 20):
                for obj in ({'i': 0, 'ok': True, 'error': None}, {'i': 1, 'ok': True, 'error': None},
                            {'ok': {'i': '3'}}):
                    data = json.dumps(obj).encode()
                    try:
                        os.write(fd, struct.pack('>I', len(data)) + data)
                    except OSError:
                        pass"""), tests=ADD_TESTS), "failed", ()),
        "forge_read_tests_from_memory": (Job(WRONG_ADD + _p("""
            import gc
            needle = ''.join(['add(1', ', 2)'])  # never a constant of this code object
            hits = [o for o in gc.get_objects() if isinstance(o, (list, tuple, dict)) and any(
                    isinstance(x, str) and needle in x and x is not needle
                    for x in (o.values() if isinstance(o, dict) else o))]
            print('LEAK tests visible' if hits else 'no tests in memory')"""), tests=ADD_TESTS),
            "failed", ("LEAK",)),
        "forge_kill_tester": (Job(WRONG_ADD + _p("""
            import os
            for pid in range(1, 300):
                if pid != os.getpid():
                    try:
                        os.kill(pid, 9)
                    except OSError:
                        pass"""), tests=ADD_TESTS), "failed", ()),
        # controls: the verdict is not simply "fail everything"
        "control_correct": (Job("def add(a, b):\n    return a + b\n", tests=ADD_TESTS), "passed", ()),
        "control_correct_noisy": (Job("import sys\nprint('PASSED?')\nsys.stderr.write('warn')\n"
                                      "def add(a, b):\n    return a + b\n", tests=ADD_TESTS), "passed", ()),
        "control_script": (Job("print(6 * 7)\n"), "passed", ()),
    }


def _write_markers() -> list[Path]:
    """Write the MARKERS this machine allows (the sandbox needs root, so all of them where it runs)."""
    made = []
    for m in map(Path, MARKERS):
        created_dir = not m.parent.exists()
        try:
            m.parent.mkdir(parents=True, exist_ok=True)
            m.write_text(f"LEAK {NONCE}\n")
        except OSError:
            continue
        made.append(m)
        if created_dir:
            made.append(m.parent)
    return made


def _remove_markers(made: list[Path]) -> None:
    for p in made:
        if p.is_dir():
            p.rmdir()
        else:
            p.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def hostile_run():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list = []
    stop = threading.Event()

    def accept_loop():
        while not stop.is_set():
            try:
                accepted.append(listener.accept())
            except OSError:
                pass

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    os.environ["SELFIMPROVE_TEST_SECRET"] = SECRET
    markers = _write_markers()
    try:
        sandbox = Sandbox(Limits(wall_s=0.6, cpu_s=2, memory_mb=256, tmp_mb=8, processes=16,
                                 output_bytes=20000), workers=4)
    except SandboxUnavailable as e:
        pytest.skip(f"no sandbox on this machine: {e}")
    finally:
        del os.environ["SELFIMPROVE_TEST_SECRET"]
    progs = programs(port)
    names = [n for n in progs for _ in range(RUNS)]
    try:
        with sandbox:
            results = sandbox.run([progs[n][0] for n in names])
    finally:
        _remove_markers(markers)
    stop.set()
    thread.join()
    listener.close()
    by_name: dict[str, list] = {}
    for name, result in zip(names, results, strict=True):
        by_name.setdefault(name, []).append(result)
    return progs, by_name, accepted


def test_suite_is_large_enough(hostile_run):
    progs, by_name, _ = hostile_run
    assert len(progs) >= 30 and all(len(v) == RUNS for v in by_name.values())


@pytest.mark.parametrize("name", sorted(programs(0)))
def test_hostile_program_verdict(hostile_run, name):
    progs, by_name, _ = hostile_run
    _, expected, forbidden = progs[name]
    for result in by_name[name]:
        allowed = (expected,) if isinstance(expected, str) else expected
        assert result.status in allowed, (name, result.status, result.stdout[-300:], result.stderr[-600:],
                                          result.tests, result.error)
        assert result.sandboxed
        assert len(result.stdout) <= 20000 and len(result.stderr) <= 20000
        for word in forbidden:
            assert word not in result.stdout, (name, result.stdout[-500:])


def _sandbox_processes() -> list[tuple[str, str]]:
    """(pid, name) of every process running under one of the sandbox's uids (>= 2**20)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
        if uid >= 1 << 20:  # the sandbox's uids
            found.append((pid, status.splitlines()[0]))
    return found


def test_no_escapes_and_no_leftovers(hostile_run):
    _, by_name, accepted = hostile_run
    assert accepted == []  # nothing reached the host's loopback listener
    for path in (ESCAPE_MARK, ESCAPE_MARK + "-daemon", f"/var/tmp/si-escape-{NONCE}",
                 f"/dev/shm/si-escape-{NONCE}", f"/etc/si-escape-{NONCE}", str(REPO / f"si-escape-{NONCE}")):
        assert not os.path.exists(path), path
    for name in ("result.json", "results.json", "verdict"):
        assert not (REPO / name).exists()
    # a process under a sandbox uid that outlives every deadline escaped its job; under pytest-xdist another
    # worker's tests may have a sandbox job running right now, so a pid counts only if it is still there after
    # 20 s (every job of this suite has a wall limit of a few seconds at most)
    leftovers = _sandbox_processes()
    deadline = time.monotonic() + 20
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.5)
        leftovers = [p for p in _sandbox_processes() if p in leftovers]
    assert leftovers == []
    assert not [p for p in os.listdir("/tmp") if p.startswith("selfimprove-sbx-")]
    # the daemon's parent exited at once, so its job passed quickly; the daemon died with the job
    assert all(r.wall_s < 0.6 for r in by_name["daemon_child"])


def test_forged_pass_reports_why(hostile_run):
    _, by_name, _ = hostile_run
    eq = by_name["forge_eq_always_true"][0]
    assert "cannot pass a value of type Anything" in eq.tests[0].error
    assert "failed: left side = -1, right side = 3" in by_name["forge_sys_exit"][0].feedback() or \
        "SystemExit" in by_name["forge_sys_exit"][0].feedback()
