"""Any JSONL file as a task, with a field mapping for question and answer.

``--task jsonl:question=prompt,answer=target,kind=number`` reads ``prompt`` as the question and ``target`` as
the gold answer. ``kind`` picks the answer layer: ``number`` (numeric extraction and normalisation),
``letter``, ``yesno``, or ``text`` (a short answer compared exactly after ``answers.normalize_text``: the
gold field as it is, the output through ``answers.extract_text``: the words after the last "the answer is", or
a bare one-line answer; a chain of thought without a marked answer is unparseable, never compared as a whole
sentence). ``fractions=false`` (for
``kind=number``) rejects an unevaluated non-whole division such as ``16/36`` in an output.

Prompt (a conversation, ``selfimprove.chat``): an optional ``system`` message, then one user message,
``template`` filled with the question (default ``Question: {question}\\nAnswer:``). Stop: ``"\nQuestion:"``.
"""

from __future__ import annotations

from pathlib import Path

from ..answers import (
    extract_letter,
    extract_number,
    extract_text,
    extract_yes_no,
    normalize_number,
    normalize_text,
)
from ..chat import few_shot
from ..errors import UserError
from ..files import read_jsonl, require_field
from ..records import Example
from .base import Task

_KINDS = {"number": extract_number, "letter": extract_letter, "yesno": extract_yes_no, "text": extract_text}
_GOLD = {"number": normalize_number, "letter": extract_letter, "yesno": extract_yes_no,
         "text": normalize_text}


class JsonlTask(Task):
    """Any JSONL file, with a mapping of its fields to question and answer and an answer kind."""

    name = "jsonl"
    stop = ("\nQuestion:",)

    def __init__(self, data: str | None, question: str = "question", answer: str = "answer",
                 kind: str = "number", id_field: str = "id", template: str = "Question: {question}\nAnswer:",
                 fractions: bool = True, system: str = "") -> None:
        if kind not in _KINDS:
            raise UserError(f"unknown jsonl kind '{kind}'; choose one of {sorted(_KINDS)}")
        if data is None:
            raise UserError("task 'jsonl' needs --data PATH")
        self.data, self.question_field, self.answer_field = data, question, answer
        self.kind, self.id_field, self.template, self.fractions = kind, id_field, template, fractions
        self.system = system

    @classmethod
    def from_options(cls, options: dict[str, str], data: str | None = None) -> JsonlTask:
        known = {"question", "answer", "kind", "id_field", "template", "fractions", "system"}
        if unknown := set(options) - known:
            raise UserError(f"unknown jsonl option(s) {sorted(unknown)}; known: {sorted(known)}")
        options = dict(options)
        if "fractions" in options:
            flag = options["fractions"].lower()
            if flag not in ("true", "false"):
                raise UserError(f"jsonl option fractions must be true or false, got {options['fractions']!r}")
            options["fractions"] = flag == "true"
        return cls(data=data, **options)

    def examples(self, split: str = "test") -> list[Example]:
        path = Path(self.data)
        if path.is_dir():
            path = path / f"{split}.jsonl"
        out = []
        for lineno, row in read_jsonl(path):
            out.append(self.example_from_row(row, path, lineno, default_id=f"{split}-{len(out)}"))
        return out

    def example_from_row(self, row: dict, path, lineno: int, default_id: str) -> Example:
        q = require_field(row, self.question_field, path, lineno, str)
        raw = require_field(row, self.answer_field, path, lineno, (str, int, float, bool))
        gold = _GOLD[self.kind](str(raw))
        if gold is None:
            raise UserError(f"cannot read gold answer {raw!r} as {self.kind}", path=str(path), line=lineno,
                            field=self.answer_field)
        return Example(id=str(row.get(self.id_field, default_id)), question=q, answer=gold)

    def prompt(self, example: Example) -> str:
        return few_shot(self.system, [], self.template.format(question=example.question))

    def extract(self, text: str) -> str | None:
        if self.kind == "number":
            return extract_number(text, fractions=self.fractions)
        return _KINDS[self.kind](text)
