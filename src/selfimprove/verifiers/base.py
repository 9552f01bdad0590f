"""The Verifier contract (DESIGN §4): ``verify(examples, answers) -> list[list[Verdict]]``.

Batch-shaped: ``answers[i]`` is the list of candidate answers for ``examples[i]`` and the result has the same
shape. Gold match, code execution, LLM judges and P(True) all share it. Undecidable is ``correct=None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..records import Example, Verdict


@runtime_checkable
class Verifier(Protocol):
    name: str
    uses_gold: bool
    """True when the verifier reads the gold answer (an oracle); reports must label it."""

    def verify(self, examples: Sequence[Example], answers: Sequence[Sequence[str | None]]
               ) -> list[list[Verdict]]: ...
