"""Any JSONL file as a task, with a field mapping for question and answer.

``--task jsonl:question=prompt,answer=target,kind=number`` reads ``prompt`` as the question and ``target`` as
the gold answer. ``kind`` picks the answer layer: ``number`` (numeric extraction and normalisation),
``letter``, ``yesno``, or ``text`` (the first line, stripped and lower-cased, compared exactly).

Prompt (a conversation, ``selfimprove.chat``): an optional ``system`` message, then one user message,
``template`` filled with the question (default ``Question: {question}``). Stop: ``"\nQuestion:"``.
"""

from __future__ import annotations

from pathlib import Path

from ..answers import extract_letter, extract_number, extract_yes_no, normalize_number
from ..chat import few_shot
from ..errors import UserError
from ..files import read_jsonl, require_field
from ..records import Example
from .base import TaskBase


def _text(t: str | None) -> str | None:
    if t is None:
        return None
    line = t.strip().splitlines()[0].strip().lower() if t.strip() else ""
    return line or None


_KINDS = {"number": extract_number, "letter": extract_letter, "yesno": extract_yes_no, "text": _text}
_GOLD = {"number": normalize_number, "letter": extract_letter, "yesno": extract_yes_no, "text": _text}


class JsonlTask(TaskBase):
    name = "jsonl"
    stop = ("\nQuestion:",)

    def __init__(self, data: str | None, question: str = "question", answer: str = "answer",
                 kind: str = "number", id_field: str = "id", template: str = "Question: {question}",
                 system: str = "") -> None:
        if kind not in _KINDS:
            raise UserError(f"unknown jsonl kind '{kind}'; choose one of {sorted(_KINDS)}")
        if data is None:
            raise UserError("task 'jsonl' needs --data PATH")
        self.data, self.question_field, self.answer_field = data, question, answer
        self.kind, self.id_field, self.template, self.system = kind, id_field, template, system

    @classmethod
    def from_options(cls, options: dict[str, str], data: str | None = None) -> JsonlTask:
        known = {"question", "answer", "kind", "id_field", "template", "system"}
        if unknown := set(options) - known:
            raise UserError(f"unknown jsonl option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(data=data, **options)

    def examples(self, split: str = "test") -> list[Example]:
        path = Path(self.data)
        if path.is_dir():
            path = path / f"{split}.jsonl"
        out = []
        for lineno, row in read_jsonl(path):
            q = require_field(row, self.question_field, path, lineno, str)
            raw = require_field(row, self.answer_field, path, lineno, (str, int, float, bool))
            gold = _GOLD[self.kind](str(raw))
            if gold is None:
                raise UserError(f"cannot read gold answer {raw!r} as {self.kind}", path=str(path), line=lineno,
                                field=self.answer_field)
            out.append(Example(id=str(row.get(self.id_field, f"{split}-{len(out)}")), question=q, answer=gold))
        return out

    def prompt(self, example: Example) -> str:
        return few_shot(self.system, [], self.template.format(question=example.question))

    def extract(self, text: str) -> str | None:
        return _KINDS[self.kind](text)
