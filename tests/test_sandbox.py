"""The sandbox's contract: codec, verdict from plain data, refusal without isolation, the unsafe mode
label."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from selfimprove.sandbox import Job, Limits, Sandbox, SandboxUnavailable
from selfimprove.sandbox._codec import ProtocolError, decode, encode
from selfimprove.sandbox.pool import _verdict

SRC = Path(__file__).resolve().parents[1] / "src"


def test_codec_round_trips_plain_data_with_exact_types():
    value = [1, 2.5, "x", None, True, (1, (2,)), {"a": {1, 2}}, frozenset({3}), b"\x00", 1 + 2j, 10 ** 40]
    back = decode(encode(value))
    assert back == value and type(back[5]) is tuple and type(back[1]) is float and type(back[0]) is int
    assert math.isnan(decode(encode(float("nan")))) and decode(encode(float("-inf"))) == float("-inf")
    assert decode(encode(True)) is True  # not 1


def test_codec_refuses_everything_else():
    class Int(int):
        pass

    for bad in (Int(3), object(), [lambda: 0], {1: object()}):
        with pytest.raises(TypeError):
            encode(bad)
    for forged in ({"i": 3}, {"x": []}, {"l": "abc"}, {"d": [[1]]}, [1], 3, {"i": "1", "f": "2"}):
        with pytest.raises((ProtocolError, ValueError)):
            decode(forged)


def test_verdict_counts_a_missing_test_report_as_failed():
    job = Job("def f(): pass", tests=("assert f() is None", "assert True"))
    raw = {"exit_code": 0, "timed_out": False, "output_exceeded": False, "stdout": "", "stderr": "",
           "tests": [{"i": 0, "ok": True, "error": None}, {"i": 0, "ok": True, "error": None},
                     {"i": 7, "ok": True, "error": None}], "wall_s": 0.1}
    result = _verdict(job, raw, sandboxed=True)
    assert result.status == "failed" and result.n_passed == 1
    assert result.tests[1].error.startswith("no result")
    all_ok = dict(raw, tests=[{"i": 0, "ok": True, "error": None}, {"i": 1, "ok": True, "error": None}])
    assert _verdict(job, all_ok, sandboxed=True).passed
    assert _verdict(job, dict(all_ok, timed_out=True), sandboxed=True).status == "timeout"


@pytest.fixture(scope="module")
def sandbox():
    try:
        sb = Sandbox(Limits(wall_s=2.0), workers=2)
    except SandboxUnavailable as e:
        pytest.skip(f"no sandbox on this machine: {e}")
    with sb:
        yield sb


def test_script_mode_stdin_exit_codes_and_feedback(sandbox):
    ok, bad, echo = sandbox.run([Job("print(sum(range(5)))"), Job("raise ValueError('boom')"),
                                 Job("print(input()[::-1])", stdin="abc\n")])
    assert (ok.status, ok.stdout, ok.exit_code) == ("passed", "10\n", 0)
    assert bad.status == "failed" and bad.exit_code == 1 and "ValueError: boom" in bad.stderr
    assert "harness" not in bad.stderr and "solution.py" in bad.stderr  # the candidate's own frames only
    assert echo.stdout == "cba\n"
    assert "ValueError: boom" in bad.feedback()


def test_test_mode_reports_each_test_and_both_sides(sandbox):
    code = "def add(a, b):\n    return a + b if a < 5 else 0\n"
    (r,) = sandbox.run([Job(code, tests=("assert add(1, 2) == 3", "assert add(5, 5) == 10, 'big'",
                                         "assert add(1, 1) in (2, 3)", "add(None, 1)"))])
    assert [t.passed for t in r.tests] == [True, False, True, False]
    assert r.tests[1].error == "assert add(5, 5) == 10 failed: left side = 0, right side = 10 (big)"
    assert r.tests[3].error.startswith("TypeError")  # the candidate's exception reaches the test
    assert r.status == "failed" and "Test 2 failed" in r.feedback()


def test_check_function_layout_and_helpers(sandbox):
    """HumanEval's layout: the test code defines check(candidate) and uses helpers from the prompt."""
    code = "def helper(x):\n    return 2 * x\n\ndef double_all(xs):\n    return [helper(x) for x in xs]\n"
    setup = ("def check(candidate):\n    assert candidate([1, 2]) == [helper(1), 4]\n"
             "    assert candidate([]) == []\n")
    (r,) = sandbox.run([Job(code, setup=setup, tests=("check(double_all)",))])
    assert r.passed, r


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_refuses_without_isolation_unless_unsafe_exec():
    """Without CAP_SYS_ADMIN the sandbox refuses with a message; --unsafe-exec runs and labels results."""
    script = ("from selfimprove.sandbox import Sandbox, Job, SandboxUnavailable\n"
              "try:\n    Sandbox(workers=1)\nexcept SandboxUnavailable as e:\n    print('REFUSED', e)\n"
              "with Sandbox(workers=1, unsafe_exec=True) as sb:\n"
              "    r = sb.run([Job('print(7)')])[0]\n"
              "    print('UNSAFE', r.status, r.sandboxed, r.stdout.strip())\n")
    out = subprocess.run(["setpriv", "--bounding-set=-sys_admin", sys.executable, "-c", script],
                         check=False, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    assert "REFUSED cannot run candidate code in a sandbox here" in out.stdout, out.stderr
    assert "--unsafe-exec" in out.stdout
    assert "UNSAFE passed False 7" in out.stdout


def test_timeout_keeps_what_was_printed_before_the_deadline(sandbox):
    (r,) = sandbox.run([Job("import time\nprint('started', flush=True)\ntime.sleep(60)")])
    assert (r.status, r.stdout, r.exit_code) == ("timeout", "started\n", None)
    assert "did not finish before the time limit" in r.feedback()
