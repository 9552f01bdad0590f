"""The Verifier contract: ``assess(examples, texts)`` judges whole completions and returns the verdicts with
the steps it took; ``verify(examples, answers)`` judges bare answer strings.

Batch-shaped: ``texts[i]`` / ``answers[i]`` are the candidates for ``examples[i]`` and the verdicts have the
same shape. Gold match, code execution, LLM judges and P(True) all share it. Undecidable is ``correct=None``,
never a silent 0. Strategies call ``assess`` (they judge completions, as the papers do, and spend the
verifier's tokens); ``verify`` is ``assess`` on each parseable answer, with an unparseable one (None) judged
``correct=None`` without a call (``verify_answers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..records import Example, Step, Verdict


@dataclass(frozen=True)
class Assessment:
    """What a verifier returned for a batch: verdicts and the steps (model calls) behind them."""

    verdicts: list[list[Verdict]]
    """Per example, one verdict per candidate text."""
    steps: list[list[Step]]
    """Per example, the steps the verifier took (their tokens are spent by whichever strategy called it)."""


@runtime_checkable
class Verifier(Protocol):
    name: str
    uses_gold: bool
    """True when the verifier reads the gold answer (an oracle); reports must label it, and strategies and
    label-free training methods refuse it."""

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
        """Judge each candidate completion text; verdicts and the steps taken, per example."""
        ...

    def verify(self, examples: Sequence[Example], answers: Sequence[Sequence[str | None]]
               ) -> list[list[Verdict]]:
        """Judge each extracted answer (None: unparseable, judged ``correct=None``)."""
        ...


def verify_answers(verifier: Verifier, examples: Sequence[Example], answers: Sequence[Sequence[str | None]]
                   ) -> list[list[Verdict]]:
    """``verify`` through ``assess``: each parseable answer is judged as the candidate text itself; an
    unparseable answer (None) is not sent and gets ``correct=None``."""
    texts = [[a for a in row if a is not None] for row in answers]
    judged = verifier.assess(examples, texts).verdicts
    out = []
    for row, vs in zip(answers, judged):
        it = iter(vs)
        out.append([Verdict(score=None, correct=None, reason="unparseable") if a is None else next(it)
                    for a in row])
    return out


def assess_extracted(verifier, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
    """``assess`` for a verifier that makes no model call: extract each text's answer with the verifier's task
    and ``verify`` it; no steps."""
    answers = [[verifier.task.extract(t) for t in row] for row in texts]
    return Assessment(verifier.verify(examples, answers), [[] for _ in examples])
