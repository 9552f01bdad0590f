"""The Task contract (DESIGN §4): ``examples(split)``, ``prompt(example)``, ``extract(text)``,
``default_verifier()``.

A task owns its answer format: ``extract`` turns a completion's text into a normalised answer string, or
``None`` when it cannot be parsed, and ``equivalent`` decides whether two answers are the same (voting and
scoring share it, so the two never disagree).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..records import Example

if TYPE_CHECKING:
    from ..verifiers.base import Verifier


@runtime_checkable
class Task(Protocol):
    name: str
    stop: tuple[str, ...]
    """Stop strings that end an answer in this task's prompt format."""

    def examples(self, split: str) -> list[Example]: ...

    def prompt(self, example: Example) -> str: ...

    def extract(self, text: str) -> str | None: ...

    def equivalent(self, a: str | None, b: str | None) -> bool: ...

    def default_verifier(self) -> Verifier: ...


class TaskBase:
    """Shared defaults: exact string equivalence over normalised answers and the gold-match verifier."""

    name = "task"
    stop: tuple[str, ...] = ()

    def equivalent(self, a: str | None, b: str | None) -> bool:
        return a is not None and b is not None and a == b

    def default_verifier(self) -> Verifier:
        from ..verifiers.match import GoldMatch

        return GoldMatch(self)

    def check(self, example: Example, answer: str | None) -> bool | None:
        """Gold check of one answer: None when the answer is unparseable or there is no gold label."""
        if answer is None or example.answer is None:
            return None
        return self.equivalent(answer, example.answer)


def limit_examples(examples: Sequence[Example], limit: int | None) -> list[Example]:
    return list(examples if limit is None else examples[:limit])
