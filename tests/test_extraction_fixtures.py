"""Extraction on real chat-model outputs: every row of ``fixtures/smollm2_outputs.jsonl`` is a completion that
SmolLM2-135M-Instruct actually wrote through its chat template (66 sampled at temperature 0.8 from one user
message; 28 greedy from the tasks' final prompts, system message included; the prompt is kept with each), with
the answer a careful reader takes from it, written by hand. A completion cut at max_tokens has no answer
(``strategies.base.answer_text``) whatever its text says, except the part the task says is complete (BoolQ:
"No, it does not ..." cut after its answer)."""

import json
from collections import Counter
from pathlib import Path

import pytest

from selfimprove.records import Completion
from selfimprove.strategies.base import answer_text
from selfimprove.tasks import get_task

ROWS = [json.loads(line) for line in (Path(__file__).parent / "fixtures" / "smollm2_outputs.jsonl")
        .read_text(encoding="utf-8").splitlines() if line.strip()]
TASKS = {"gsm8k": ("gsm8k", None), "boolq": ("boolq", None), "commonsense-qa": ("commonsense-qa", None),
         "jsonl:kind=number": ("jsonl:kind=number,fractions=false", "unused.jsonl"),
         "jsonl:kind=text": ("jsonl:kind=text", "unused.jsonl")}


def test_the_fixture_set_is_large_and_varied():
    assert len(ROWS) >= 60
    by_task = Counter(r["task"] for r in ROWS)
    assert set(by_task) == set(TASKS) and min(by_task.values()) >= 8
    assert sum(r["finish_reason"] == "length" for r in ROWS) >= 5  # truncated outputs are in the set
    assert sum(r["expected"] is None for r in ROWS) >= 10  # and outputs with no readable answer


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['task']}-{r['example_id']}-{i}" for i, r in enumerate(ROWS)])
def test_extraction_of_a_real_output(row):
    spec, data = TASKS[row["task"]]
    task = get_task(spec, data=data)
    c = Completion(text=row["text"], finish_reason=row["finish_reason"])
    text = answer_text(task, c)
    got = None if text is None else task.extract(text)
    assert got == row["expected"], row["text"]
