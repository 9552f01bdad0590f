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


def pick_shots(task, k: int, split: str = "train") -> list:
    """The first ``k`` examples of ``split`` (worked examples for a few-shot prompt); ``[]`` when ``k`` is 0.
    Shots never come from the evaluated split, so an example never sees its own answer."""
    if k <= 0:
        return []
    from ..errors import UserError

    try:
        shots = task.examples(split)[:k]
    except (UserError, OSError) as e:
        raise UserError(f"task '{task.name}': shots={k} takes worked examples from the '{split}' split, which "
                        f"could not be read ({e}); give a data folder with {split}.jsonl or use shots=0",
                        field="shots") from None
    if len(shots) < k:
        raise UserError(f"task '{task.name}': shots={k} but the '{split}' split has {len(shots)} examples",
                        field="shots")
    return shots


def limit_examples(examples: Sequence[Example], limit: int | None) -> list[Example]:
    return list(examples if limit is None else examples[:limit])
