"""Multiple-choice QA in the CommonsenseQA layout (``question``, ``choices`` list, ``answer`` index) and
BoolQ-style yes/no questions (``question``, ``answer`` true/false, optional ``passage``).

Answers are letters (``"A"``…) or ``"yes"``/``"no"``; extraction through ``selfimprove.answers``.

Prompts (conversations, ``selfimprove.chat``; a model without a chat template reads them as plain text), with
``shots=K`` worked examples from the train split as user/assistant turns before the question:

    multiple-choice   system             Answer the multiple-choice question with the letter of the best
                                         choice.
                      user               Question: <question>\nA) <choice>\nB) <choice>...
                      assistant (shots)  <letter>
    boolq             system             Answer the question with yes or no.
                      user               <passage>\nQuestion: <question>?
                      assistant (shots)  yes | no

Stop: ``"\nQuestion:"`` (a plain-text model starting the next question). It cannot cut a whole answer to ""
as a bare ``"\n"`` did when a chat model's reply began with a newline.
Not covered: log-likelihood scoring of each choice (lm-eval's ``multiple_choice`` output type); here the model
generates its answer and it is parsed.
"""

from __future__ import annotations

from pathlib import Path

from ..answers import LETTERS, extract_letter, extract_yes_no
from ..chat import few_shot
from ..errors import UserError
from ..files import read_jsonl, require_field
from ..records import Example
from .base import Task, pick_shots


def _load(data: str | None, split: str, task: str) -> tuple[Path, list[tuple[int, dict]]]:
    if data is None:
        raise UserError(f"task '{task}' needs --data PATH (a JSONL file or a folder with <split>.jsonl)")
    path = Path(data)
    if path.is_dir():
        path = path / f"{split}.jsonl"
    return path, list(read_jsonl(path))


class _FileTask(Task):
    """A task read from a JSONL file or a folder of ``<split>.jsonl``; option ``shots=K`` (worked
    examples)."""

    system = ""
    stop = ("\nQuestion:",)

    def __init__(self, data: str | None = None, shots: int = 0) -> None:
        if shots < 0:
            raise UserError(f"shots must be >= 0, got {shots}", field="shots")
        self.data, self.shots = data, shots
        self._shots: list[tuple[str, str]] | None = None

    def question(self, example: Example) -> str:
        raise NotImplementedError

    def prompt(self, example: Example) -> str:
        if self._shots is None:
            self._shots = [(self.question(e), e.answer) for e in pick_shots(self, self.shots)]
        return few_shot(self.system, self._shots, self.question(example))


class MultipleChoiceTask(_FileTask):
    """Multiple-choice questions (question, choices, answer index); the model answers with a letter."""

    name = "multiple-choice"
    system = "Answer the multiple-choice question with the letter of the best choice."

    def examples(self, split: str = "test") -> list[Example]:
        path, rows = _load(self.data, split, self.name)
        out = []
        for lineno, row in rows:
            question = require_field(row, "question", path, lineno, str)
            choices = require_field(row, "choices", path, lineno, list)
            if not 2 <= len(choices) <= len(LETTERS):
                raise UserError(f"expected 2-{len(LETTERS)} choices, got {len(choices)}", path=str(path),
                                line=lineno, field="choices")
            index = require_field(row, "answer", path, lineno, int)
            if not 0 <= index < len(choices):
                raise UserError(f"answer index {index} outside 0..{len(choices) - 1}", path=str(path),
                                line=lineno, field="answer")
            out.append(Example(id=str(row.get("id", f"{split}-{len(out)}")), question=question,
                               answer=LETTERS[index], meta={"choices": [str(c) for c in choices]}))
        return out

    def question(self, example: Example) -> str:
        options = "\n".join(f"{LETTERS[i]}) {c}" for i, c in enumerate(example.meta["choices"]))
        return f"Question: {example.question}\n{options}"

    def extract(self, text: str) -> str | None:
        return extract_letter(text, n_choices=len(LETTERS))


class BoolQTask(_FileTask):
    """Yes/no questions with an optional passage, in the BoolQ layout."""

    name = "boolq"
    system = "Answer the question with yes or no."

    def examples(self, split: str = "test") -> list[Example]:
        path, rows = _load(self.data, split, self.name)
        out = []
        for lineno, row in rows:
            question = require_field(row, "question", path, lineno, str)
            answer = require_field(row, "answer", path, lineno, (bool, str))
            gold = extract_yes_no(str(answer).lower()) if not isinstance(answer, bool) else (
                "yes" if answer else "no")
            if gold is None:
                raise UserError(f"answer {answer!r} is not yes/no/true/false", path=str(path), line=lineno,
                                field="answer")
            out.append(Example(id=str(row.get("id", f"{split}-{len(out)}")), question=question, answer=gold,
                               meta={"passage": row.get("passage")}))
        return out

    def question(self, example: Example) -> str:
        passage = example.meta.get("passage")
        head = f"{passage}\n" if passage else ""
        return f"{head}Question: {example.question.rstrip('?')}?"

    def extract(self, text: str) -> str | None:
        return extract_yes_no(text)

    def complete_part(self, text: str) -> str | None:
        """A reply cut at max_tokens after "No, ethanol does not ..." has already answered: the yes/no comes
        first (``extract_yes_no`` reads a marked answer or the first word), whatever the cut explanation
        says."""
        return text
