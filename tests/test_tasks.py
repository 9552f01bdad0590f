import json
import subprocess
import sys

import pytest

from selfimprove.cli.main import main
from selfimprove.errors import UserError
from selfimprove.tasks import get_task


def test_gsm8k_local_file_gold_answers(shared_data):
    task = get_task("gsm8k", data=str(shared_data / "gsm8k" / "test.jsonl"))
    examples = task.examples("test")
    assert len(examples) == 1319
    # the official solution, given back as a completion, is always scored correct
    assert all(task.check(e, task.extract(e.meta["solution"])) for e in examples)
    assert examples[0].answer == task.extract(examples[0].meta["solution"])


def test_gsm8k_folder_with_split(shared_data):
    task = get_task("gsm8k", data=str(shared_data / "gsm8k"))
    assert len(task.examples("train")) == 7473


def test_commonsense_qa_and_boolq(shared_data):
    mc = get_task("multiple-choice", data=str(shared_data / "commonsense_qa" / "test.jsonl"))
    ex = mc.examples("test")
    assert len(ex) == 1221 and ex[0].answer == "A" and len(ex[0].meta["choices"]) == 5
    assert "A) bank" in mc.prompt(ex[0])
    assert mc.check(ex[0], mc.extract("The answer is (A)")) is True
    bq = get_task("boolq", data=str(shared_data / "boolq" / "test.jsonl"))
    bex = bq.examples("test")
    assert len(bex) == 3270 and bex[0].answer == "no" and bex[1].answer == "yes"
    assert bq.check(bex[0], bq.extract("garbage")) is None


def _score(tmp_path, rows, capsys):
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "scored.jsonl"
    code = main(["score", "--task", "gsm8k", "--completions", str(path), "--out", str(out)])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    return code, last, [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def test_score_official_solutions_is_100_percent(shared_data, tmp_path, capsys):
    rows = [json.loads(line) for line in (shared_data / "gsm8k" / "test.jsonl").open()][:200]
    rows = [{"id": i, "completion": r["answer"], **r} for i, r in enumerate(rows)]
    code, last, scored = _score(tmp_path, rows, capsys)
    assert code == 0 and last == "accuracy=1.0000 n=200 unparsed=0"
    assert len(scored) == 200 and all(r["correct"] for r in scored)


def test_score_other_formats(tmp_path, capsys):
    gold = "Some steps.\n#### 1250"
    completions = ["So she pays $1,250.", "The answer is 1250.", "Thus \\boxed{1250}.",
                   "Step 1: 1000 + 250\nA: 1250", "first 3, then 1250.0", "I don't know",
                   "The answer is 1251"]
    rows = [{"id": f"r{i}", "completion": c, "question": "q", "answer": gold}
            for i, c in enumerate(completions)]
    code, last, scored = _score(tmp_path, rows, capsys)
    assert code == 0
    assert [r["correct"] for r in scored] == [True] * 5 + [False, False]
    assert scored[5]["extracted"] is None
    assert last == "accuracy=0.7143 n=7 unparsed=1"


@pytest.mark.parametrize("content, needle", [
    ('{"id": 1, "completion": "4", "question": "q", "answer": "#### 4"}\n{"id": 2, "completion": \n',
     ":2: not valid JSON"),
    ('{"id": 1, "question": "q", "answer": "#### 4"}\n', ":1, field 'completion': missing field"),
    ('{"id": 1, "completion": "4", "question": "q", "answer": "none"}\n', ":1, field 'answer'"),
    ('{"id": 1, "completion": 4, "question": "q", "answer": "#### 4"}\n', "field 'completion': expected str"),
])
def test_bad_input_exits_2_with_file_line_field(tmp_path, content, needle):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "selfimprove.cli.main", "score", "--task", "gsm8k",
                           "--completions", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_task_and_options():
    with pytest.raises(UserError, match="unknown task 'nope'"):
        get_task("nope")
    with pytest.raises(UserError, match="unknown jsonl option"):
        get_task("jsonl:colour=red", data="x.jsonl")


def test_jsonl_task_field_mapping(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"id": "a", "prompt": "2+2?", "target": 4}\n{"id": "b", "prompt": "yes?", "target": "5"}\n')
    task = get_task("jsonl:question=prompt,answer=target", data=str(path))
    ex = task.examples("test")
    assert [e.answer for e in ex] == ["4", "5"] and task.prompt(ex[0]).startswith("Question: 2+2?")
    with pytest.raises(UserError, match=r"d.jsonl:1, field 'question': missing field"):
        get_task("jsonl", data=str(path)).examples("test")
