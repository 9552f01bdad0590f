"""The code training methods' rounds on the scripted backend: what ``code-star`` and ``self-code-align``
collect and build (programs run for real in the sandbox), and that self-code-align never reads gold to
select."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from selfimprove.backends.scripted import ScriptedBackend, ScriptedCalculator
from selfimprove.sandbox import Sandbox, SandboxUnavailable
from selfimprove.tasks import get_task
from selfimprove.training.config import LoopConfig
from selfimprove.training.methods import get_method

ROWS = [{"task_id": 1, "text": "Write a function to add two numbers.",
         "code": "def add(a, b):\n    return a + b",
         "test_list": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]}]
WRONG = "```python\ndef add(a, b):\n    return a - b\n```"
RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"
OTHER = "```python\ndef add(a, b):\n    return a * b\n```"
TESTS = "```python\nassert add(1, 2) == 3\nassert add(5, 5) == 10\nassert add(0, 0) == 0\n```"


@pytest.fixture(scope="module", autouse=True)
def _needs_sandbox():
    try:
        Sandbox(workers=1).close()
    except SandboxUnavailable as e:
        pytest.skip(f"no sandbox on this machine: {e}")


def _mbpp(tmp_path, **row):
    path = tmp_path / f"mbpp{len(row)}.jsonl"
    path.write_text(json.dumps({**ROWS[0], **row}) + "\n")
    return get_task("mbpp", data=str(path))


def _loop(task, method: str) -> SimpleNamespace:
    return SimpleNamespace(task=task, cfg=LoopConfig.from_dict({"method": {"name": method}, "n": 4}))


def _backend():
    return ScriptedBackend([(r"Do not solve the problem", [TESTS]),
                            (r"add two numbers", [WRONG, RIGHT, OTHER, RIGHT])])


def test_code_star_keeps_the_programs_that_pass_the_gold_tests(tmp_path):
    task = _mbpp(tmp_path)
    try:
        method = get_method("code-star")
        assert method.reads_gold and method.objective == "sft"
        examples = task.examples("test")
        traces = method.collect(_loop(task, "code-star"), 1, _backend(), examples)
        assert [v.correct for v in traces[0].steps[0].verdicts] == [False, True, False, True]
        assert "oracle tests" in traces[0].steps[0].verdicts[1].reason
        built = method.build(_loop(task, "code-star"), 1, traces, examples)
        assert [r.completion for r in built.rows] == [RIGHT]  # deduplicated
        assert built.stats["gold_filter"] is True
    finally:
        task.close()


def test_self_code_align_selects_by_its_own_tests_and_never_by_gold(tmp_path):
    task = _mbpp(tmp_path)
    # different gold: the solution returns 0 and the gold tests expect it; selection must not change
    other = _mbpp(tmp_path, code="def add(a, b):\n    return 0", test_list=["assert add(1, 2) == 0"])
    try:
        method = get_method("self-code-align")
        assert not method.reads_gold
        built = {}
        for name, t in (("task", task), ("other", other)):
            examples = t.examples("test")
            traces = method.collect(_loop(t, "self-code-align"), 1, _backend(), examples)
            built[name] = method.build(_loop(t, "self-code-align"), 1, traces, examples)
        assert [r.completion for r in built["task"].rows] == [RIGHT] == [
            r.completion for r in built["other"].rows]
        # gold is read only for the report: the kept program passes the first gold tests, not the second
        assert built["task"].stats["kept_gold_precision"] == 1.0
        assert built["other"].stats["kept_gold_precision"] == 0.0
        assert built["task"].stats["problems_with_tests"] == 1
    finally:
        task.close()
        other.close()


def test_code_star_on_the_program_aided_task():
    task = get_task("pal-arithmetic")
    try:
        examples = task.examples("train")[:4]
        method = get_method("code-star")
        loop = _loop(task, "code-star")
        traces = method.collect(loop, 1, ScriptedCalculator(error_rate=0.5, seed=3), examples)
        built = method.build(loop, 1, traces, examples)
        for row in built.rows:  # every kept program prints the gold answer
            ex = next(e for e in examples if e.id == row.example_id)
            assert task.extract(row.completion) == ex.answer
        assert built.rows and len({r.example_id for r in built.rows}) <= 4
    finally:
        task.close()


def test_code_methods_refuse_tasks_they_cannot_run():
    task = get_task("arithmetic")
    with pytest.raises(ValueError, match="needs a code task"):
        get_method("code-star").collect(_loop(task, "code-star"), 1, ScriptedBackend(),
                                        task.examples("dev")[:1])
    with pytest.raises(ValueError, match="needs a code task"):
        get_method("self-code-align").collect(_loop(task, "self-code-align"), 1, ScriptedBackend(),
                                              task.examples("dev")[:1])


def test_self_code_align_on_pal_keeps_checked_agreeing_programs_and_never_reads_gold():
    import dataclasses

    task = get_task("pal-arithmetic")
    try:
        example = task.examples("test")[0]
        ops = example.meta["operands"]
        total = sum(ops)
        expr = " + ".join(map(str, ops))
        right = f"```python\nprint({expr})\n```"
        right2 = f"```python\nx = {expr}\nprint(x)\n```"
        wrong = f"```python\nprint({total + 1})\n```"
        crash = "```python\nprint(undefined_name)\n```"
        # the model's checker holds for any non-negative value, so the agreement step must pick the majority
        checker = "```python\nassert answer >= 0\n```"
        backend = ScriptedBackend([(r"checks whether the proposed answer", [checker]),
                                   (r"prints the value", [right, wrong, right2, crash])])
        method = get_method("self-code-align")
        rows = {}
        for name, e in (("gold", example),
                        ("other gold", dataclasses.replace(example, answer=str(total + 1)))):
            traces = method.collect(_loop(task, "self-code-align"), 1, backend, [e])
            kept = [v.correct for v in traces[0].steps[0].verdicts]
            assert kept == [True, False, True, False], kept
            assert sum(s.kind == "verify-program" for s in traces[0].steps) == 3  # the crash had no value
            built = method.build(_loop(task, "self-code-align"), 1, traces, [e])
            rows[name] = [r.completion for r in built.rows]
            precision = built.stats["kept_gold_precision"]
            assert precision == (1.0 if name == "gold" else 0.0)  # gold is read for the report only
        assert rows["gold"] == rows["other gold"] == [right, right2]
    finally:
        task.close()


def test_truncated_samples_train_on_their_closed_code_block():
    from selfimprove.records import Completion, Step, Trace, Verdict
    from selfimprove.training.data import complete_targets, correct_rows, trainable

    task = get_task("pal-arithmetic")
    block = "```python\nprint(1 + 2)\n```"
    comps = (Completion(block + "\n\nThis program prints the sum of", finish_reason="length"),
             Completion("```python\nprint(1 +", finish_reason="length"),  # no closed block: stays truncated
             Completion(block + "\nDone.", finish_reason="stop"))  # finished: unchanged
    step = Step(kind="generate", prompt="p", completions=comps, answers=("3", None, "3"),
                verdicts=(Verdict(1.0, True, "gold"), Verdict(0.0, False, "gold"),
                          Verdict(1.0, True, "gold")))
    trace = Trace(example_id="e", strategy="code-star", steps=(step,))
    closed = complete_targets(task, [trace])
    assert [c.text for c in closed[0].steps[0].completions] == [block, comps[1].text, comps[2].text]
    assert [trainable(c) for c in closed[0].steps[0].completions] == [True, False, True]
    assert trace.steps[0].completions[0].finish_reason == "length"  # the stored trace is not changed
    assert [r.completion for r in correct_rows(closed)] == [block, comps[2].text]
    task.close()
