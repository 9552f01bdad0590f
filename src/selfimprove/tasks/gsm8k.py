"""GSM8K (Cobbe et al., "Training Verifiers to Solve Math Word Problems", arXiv:2110.14168): grade-school math
word problems with a numeric final answer.

Reads the official JSONL layout (``question``, ``answer`` whose last line is ``#### <n>``) from a path, or a
hub dataset id (``openai/gsm8k``) through ``datasets`` when the machine is online. Answers are extracted and
compared through ``selfimprove.answers`` (numbers normalised; LaTeX through math-verify).

Prompt (a conversation, ``selfimprove.chat``; a model without a chat template reads it as plain text):

    system     Solve the math word problem. Think step by step, then give the final answer on its own line
               as '#### <number>'.
    user       Question: <question>                          } ``shots=K`` worked examples from the train
    assistant  <its solution, ending '#### <n>'>              } split, calculator annotations removed
    user       Question: <question>

Stop: ``"\n\nQuestion:"`` (a plain-text model starting the next problem); it cannot cut a whole answer.
Not covered: the Socratic variant's sub-questions.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..answers import extract_number
from ..chat import few_shot
from ..errors import UserError
from ..files import read_jsonl, require_field
from ..records import Example
from .base import Task, pick_shots

SYSTEM = ("Solve the math word problem. Think step by step, then give the final answer on its own line as "
          "'#### <number>'.")
_CALC = re.compile(r"<<[^<>]*>>")


class GSM8KTask(Task):
    """GSM8K grade-school math word problems, numeric answers (Cobbe et al. 2021, arXiv:2110.14168)."""

    name = "gsm8k"
    stop = ("\n\nQuestion:",)

    def __init__(self, data: str | None = None, hub_id: str = "openai/gsm8k", shots: int = 0) -> None:
        if shots < 0:
            raise UserError(f"shots must be >= 0, got {shots}", field="shots")
        self.data = data
        self.hub_id = hub_id
        self.shots = shots
        self._shots: list[tuple[str, str]] | None = None

    def examples(self, split: str = "test") -> list[Example]:
        if self.data is None:
            return self._from_hub(split)
        path = Path(self.data)
        if path.is_dir():
            path = path / f"{split}.jsonl"
        out = []
        for lineno, row in read_jsonl(path):
            out.append(self.example_from_row(row, path, lineno, default_id=f"{split}-{len(out)}"))
        return out

    def example_from_row(self, row: dict, path, lineno: int, default_id: str) -> Example:
        question = require_field(row, "question", path, lineno, str)
        solution = require_field(row, "answer", path, lineno, (str, int, float))
        gold = extract_number(str(solution))
        if gold is None:
            raise UserError("gold answer has no number (expected a final '#### <n>')", path=str(path),
                            line=lineno, field="answer")
        return Example(id=str(row.get("id", default_id)), question=question, answer=gold,
                       meta={"solution": solution})

    def _from_hub(self, split: str) -> list[Example]:
        try:
            from datasets import load_dataset
        except ImportError as e:
            raise UserError("loading gsm8k from the hub needs `pip install selfimprove[hf]`; "
                            "or pass --data PATH to a local JSONL file") from e
        try:
            ds = load_dataset(self.hub_id, "main", split=split)
        except Exception as e:  # noqa: BLE001 — offline, unknown split, ...: all become one user error
            raise UserError(f"could not load '{self.hub_id}' split '{split}' from the hub "
                            f"({type(e).__name__}); pass --data PATH to a local GSM8K JSONL file") from None
        return [self.example_from_row(dict(row), self.hub_id, i + 1, default_id=f"{split}-{i}")
                for i, row in enumerate(ds)]

    def prompt(self, example: Example) -> str:
        if self._shots is None:
            self._shots = [(f"Question: {e.question}", _CALC.sub("", str(e.meta["solution"])))
                           for e in pick_shots(self, self.shots)]
        return few_shot(SYSTEM, self._shots, f"Question: {example.question}")

    def step_format(self):
        """Search steps: one line per step; the path is finished once it writes its ``#### <n>`` line."""
        from .steps import StepFormat

        return StepFormat(delimiter="\n", final=r"####\s*\S")

    def extract(self, text: str) -> str | None:
        return extract_number(text, fractions=False)  # GSM8K answers are whole numbers
