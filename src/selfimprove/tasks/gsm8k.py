"""GSM8K (Cobbe et al. 2021): grade-school math word problems with a numeric final answer.

Reads the official JSONL layout (``question``, ``answer`` whose last line is ``#### <n>``) from a path, or a
hub dataset id (``openai/gsm8k``) through ``datasets`` when the machine is online. Answers are extracted and
compared through ``selfimprove.answers`` (numbers normalised; LaTeX through math-verify).

Not covered: the Socratic variant's sub-questions; few-shot prompts (the prompt is zero-shot and asks for a
final ``#### n`` line, which the extractor reads first).
"""

from __future__ import annotations

from pathlib import Path

from ..answers import extract_number
from ..errors import UserError
from ..files import read_jsonl, require_field
from ..records import Example
from .base import Task

PROMPT = "Solve the problem. Think step by step, then give the final answer on its own line as '#### <number>'.\n\nQuestion: {question}\nAnswer:"


class GSM8KTask(Task):
    """GSM8K grade-school math word problems, numeric answers (Cobbe et al. 2021, arXiv:2110.14168)."""

    name = "gsm8k"
    stop = ("\n\nQuestion:",)

    def __init__(self, data: str | None = None, hub_id: str = "openai/gsm8k", chat: bool = False) -> None:
        self.data = data
        self.hub_id = hub_id
        self.chat = chat

    @classmethod
    def from_options(cls, options: dict[str, str], data: str | None = None) -> GSM8KTask:
        unknown = set(options) - {"hub_id", "chat"}
        if unknown:
            raise UserError(f"unknown gsm8k option(s) {sorted(unknown)}; known: hub_id, chat")
        return cls(data=data, hub_id=options.get("hub_id", "openai/gsm8k"),
                   chat=options.get("chat", "false").lower() in ("1", "true", "yes"))

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
            raise UserError(f"could not load '{self.hub_id}' split '{split}' from the hub ({type(e).__name__});"
                            " pass --data PATH to a local GSM8K JSONL file") from None
        return [self.example_from_row(dict(row), self.hub_id, i + 1, default_id=f"{split}-{i}")
                for i, row in enumerate(ds)]

    def prompt(self, example: Example) -> str:
        return PROMPT.format(question=example.question)

    def step_format(self):
        """Search steps: one line per step; the path is finished once it writes its ``#### <n>`` line."""
        from .steps import StepFormat

        return StepFormat(delimiter="\n", final=r"####\s*\S")

    def extract(self, text: str) -> str | None:
        return extract_number(text, fractions=False)  # GSM8K answers are whole numbers
