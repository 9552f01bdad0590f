"""Golden traces of the execution strategies and verifiers on the scripted backend (programs run for real in
the sandbox): self-debug with oracle / self-written / run-only feedback, ProgCo, PAL, CodeT."""

from __future__ import annotations

import json

import pytest

from selfimprove.backends.scripted import ScriptedBackend, ScriptedCalculator
from selfimprove.runner import strategy_metrics
from selfimprove.sandbox import Sandbox, SandboxUnavailable
from selfimprove.strategies import get_strategy
from selfimprove.strategies.base import score_traces
from selfimprove.tasks import get_task
from selfimprove.verifiers.execution import dual_agreement, parse_tests

ROWS = [{"task_id": 1, "text": "Write a function to add two numbers.",
         "code": "def add(a, b):\n    return a + b",
         "test_list": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]}]
WRONG = "```python\ndef add(a, b):\n    return a - b\n```"
RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"
TESTS = "```python\nassert add(1, 2) == 3\nassert add(5, 5) == 10\nassert add(0, 0) == 0\n```"


@pytest.fixture(scope="module", autouse=True)
def _needs_sandbox():
    try:
        Sandbox(workers=1).close()
    except SandboxUnavailable as e:
        pytest.skip(f"no sandbox on this machine: {e}")


@pytest.fixture()
def mbpp(tmp_path):
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    task = get_task("mbpp", data=str(path))
    yield task, task.examples("test")
    task.close()


def _debugger():
    # first match wins: the debug prompt also contains the task's text
    return ScriptedBackend([(r"Do not solve the problem", [TESTS]), (r"Feedback from running it", [RIGHT]),
                            (r"add two numbers", [WRONG])])


def test_self_debug_with_oracle_tests_is_labelled_and_fixes(mbpp):
    task, examples = mbpp
    strategy = get_strategy("self-debug:feedback=oracle,rounds=2")
    assert strategy.uses_gold
    backend = _debugger()
    (t,) = score_traces(task, examples, strategy.run(backend, task, examples))
    assert [s.kind for s in t.steps] == ["generate", "debug"]
    assert "Test 1 failed: assert add(1, 2) == 3 failed: left side = -1, right side = 3" in t.steps[1].prompt
    assert "```python\ndef add(a, b):\n    return a - b\n```" in t.steps[1].prompt
    assert (t.initial_correct, t.correct) == (False, True)
    assert t.info["oracle"] is True and t.info["feedback"] == "oracle tests" and t.info["revisions"] == 1
    assert [r["passed"] for r in t.info["rounds"]] == [False, True]
    assert t.calls == 2


def test_self_debug_with_self_written_tests_reads_no_gold(mbpp):
    task, examples = mbpp
    strategy = get_strategy("self-debug:feedback=self,rounds=2")
    assert not strategy.uses_gold
    (t,) = score_traces(task, examples, strategy.run(_debugger(), task, examples))
    assert [s.kind for s in t.steps] == ["generate", "write-tests", "debug"]
    assert t.steps[1].info["tests"] == ["assert add(1, 2) == 3", "assert add(5, 5) == 10",
                                        "assert add(0, 0) == 0"]
    # the feedback names a model-written test, never a gold one
    assert "assert add(1, 2) == 3 failed: left side = -1" in t.steps[2].prompt
    assert "add(2, 2)" not in t.steps[2].prompt
    assert (t.initial_correct, t.correct, t.info["oracle"]) == (False, True, False)
    assert t.info["feedback"] == "self-written tests"


def test_transitions_rows_keep_oracle_and_self_feedback_apart(mbpp):
    task, examples = mbpp
    rows = {}
    for spec in ("self-debug:feedback=oracle", "self-debug:feedback=self"):
        traces = score_traces(task, examples, get_strategy(spec).run(_debugger(), task, examples))
        rows[spec] = strategy_metrics(task, examples, traces)
    assert rows["self-debug:feedback=oracle"]["feedback"] == "oracle tests (ORACLE)"
    assert rows["self-debug:feedback=self"]["feedback"] == "self-written tests"
    for m in rows.values():
        assert m["correction"]["transitions"] == {"cc": 0, "cw": 0, "wc": 1, "ww": 0}


def test_self_debug_run_feedback_on_pal_fixes_a_crash():
    task = get_task("pal-arithmetic:terms=2-2")
    try:
        ex = task.examples("dev")[:1]
        expr = " + ".join(map(str, ex[0].meta["operands"]))
        backend = ScriptedBackend([(r"Feedback from running it", [f"```python\nprint({expr})\n```"]),
                                   (r"prints the value", ["```python\nprint(totl)\n```"])])
        (t,) = score_traces(task, ex, get_strategy("self-debug:feedback=run").run(backend, task, ex))
        assert "NameError: name 'totl' is not defined" in t.steps[1].prompt
        assert (t.initial_answer, t.final_answer, t.correct) == (None, ex[0].answer, True)
        assert t.info["feedback"] == "execution errors only"
        with pytest.raises(ValueError, match="feedback=run"):
            get_strategy("self-debug:feedback=self").run(backend, task, ex)
    finally:
        task.close()


def test_progco_refines_on_a_failed_check_and_stops_on_a_passing_one():
    task = get_task("pal-arithmetic:terms=2-2")
    try:
        ex = task.examples("dev")[:1]
        total = int(ex[0].answer)
        expr = " + ".join(map(str, ex[0].meta["operands"]))
        backend = ScriptedBackend([
            (r"checks whether the proposed answer is correct",
             [f"```python\nassert int(answer) == {total}\n```"]),
            (r"Result of running the check", [f"```python\nprint({expr})\n```"]),
            (r"prints the value", [f"```python\nprint({expr} + 1)\n```"])])
        (t,) = score_traces(task, ex, get_strategy("progco:rounds=3").run(backend, task, ex))
        assert [s.kind for s in t.steps] == ["generate", "verify-program", "refine", "verify-program"]
        assert t.steps[1].prompt.count(f"print({expr} + 1)") == 1 and "AssertionError" in t.steps[2].prompt
        assert [r["check"] for r in t.info["rounds"]] == [False, True]
        assert (t.initial_answer, t.final_answer) == (str(total + 1), str(total)) and t.correct
        assert t.info["last_check"] is True and "oracle" not in t.info
    finally:
        task.close()


def test_pal_votes_by_executed_value_on_the_scripted_model():
    task = get_task("pal-arithmetic")
    try:
        examples = task.examples("dev")[:6]
        backend = ScriptedCalculator(error_rate=0.3, seed=1)
        traces = score_traces(task, examples,
                              get_strategy("pal:n=5,temperature=0.8").run(backend, task, examples))
        for t in traces:
            values = t.steps[0].answers
            top = max(values.count(v) for v in values if v is not None)
            assert t.final_answer is None or values.count(t.final_answer) == top
        assert sum(t.correct for t in traces) >= 5  # 5 noisy programs outvote their errors
    finally:
        task.close()


def test_codet_dual_agreement_picks_the_consensus(mbpp, capsys):
    task, examples = mbpp
    other = "```python\ndef add(a, b):\n    return a * b\n```"
    backend = ScriptedBackend([(r"Do not solve the problem", [TESTS]),
                               (r"add two numbers", [WRONG, RIGHT, other, RIGHT])])
    (t,) = score_traces(task, examples, get_strategy("codet:n=4").run(backend, task, examples))
    # RIGHT passes all 3 tests in a set of 2: 2*3; a-b and a*b both pass only add(0, 0) == 0: a set of 2, 2*1
    assert t.info["scores"] == [2 / 12, 6 / 12, 2 / 12, 6 / 12]
    assert t.info["selected"] == 1 and t.correct and not t.initial_correct
    # the generation-verification gap of self-tests: 2 of 4 samples right, the selected one right
    v = strategy_metrics(task, examples, [t])["verification"]
    assert (v["mean_sample_accuracy"], v["selected_accuracy"], v["gap"]) == (0.5, 1.0, 0.5)
    from selfimprove.cli.tables import print_verification_table

    print_verification_table({"codet:n=4": {"verification": v}})
    assert "+50.0" in capsys.readouterr().out
    assert parse_tests("```python\nassert f(1) == 2\nassert f(1) == 2\nx = 1\n```", 5) == ["assert f(1) == 2"]
    written = "```python\ndef f(x):\n    assert x > 0\n    return x\nassert g(2) == 1\nassert f(2) == 2\n```"
    assert parse_tests(written, 5, "f") == ["assert f(2) == 2"]  # not the function's own assert, not g
    assert dual_agreement([None], 0)[0].correct is None  # no tests written: undecided, not a pass


def test_label_free_strategies_do_not_depend_on_gold(mbpp, tmp_path):
    """With the gold tests and solution replaced, every non-oracle strategy leaves the same trace."""
    task, examples = mbpp
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps({**ROWS[0], "code": "def add(a, b):\n    return 0",
                                "test_list": ["assert add(1, 2) == 3", "assert add(9, 9) == 0"]}) + "\n")
    other = get_task("mbpp", data=str(path))
    try:
        for spec in ("self-debug:feedback=self", "self-debug:feedback=run", "codet:n=2", "progco"):
            a = get_strategy(spec).run(_debugger(), task, examples)
            b = get_strategy(spec).run(_debugger(), other, other.examples("test"))
            assert [t.to_dict() for t in a] == [t.to_dict() for t in b], spec
        oracle = [get_strategy("self-debug:feedback=oracle").run(_debugger(), t, t.examples("test"))[0]
                  for t in (task, other)]
        assert oracle[0].steps[1].prompt != oracle[1].steps[1].prompt  # the oracle row does read gold
    finally:
        other.close()


def test_code_strategies_refuse_a_task_without_code():
    from selfimprove.errors import UserError

    task = get_task("arithmetic")
    for spec in ("self-debug", "progco", "pal", "codet"):
        with pytest.raises(UserError, match="needs a code task"):
            get_strategy(spec).run(ScriptedBackend(), task, task.examples("dev")[:1])


def test_program_verify_counts_a_check_without_assert_as_undecided():
    """A checking program that runs but asserts nothing has checked nothing: undecided, not "all hold"."""
    from selfimprove.verifiers.execution import ProgramVerify

    task = get_task("pal-arithmetic:terms=2-2")
    try:
        ex = task.examples("dev")[:1]
        total = int(ex[0].answer)
        checks = {"first": "print(answer)", "second": f"if True:\n    assert int(answer) == {total}",
                  "third": f"assert int(answer) == {total + 1}"}
        backend = ScriptedBackend([(rf"{k} reply", [f"```python\n{v}\n```"]) for k, v in checks.items()])
        verdicts, steps, feedback = ProgramVerify(backend, task).check(
            [ex[0]] * 3, [str(total)] * 3, [f"My {k} reply: {total}." for k in checks])
        assert [v.correct for v in verdicts] == [None, True, False]
        assert "no assert" in verdicts[0].reason and "checked nothing" in feedback[0]
        assert steps[0][0].info["status"] == "passed"  # it ran; it just checked nothing
    finally:
        task.close()
