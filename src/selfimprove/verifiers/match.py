"""Gold-answer match through the task's own equivalence (the default verifier of every task)."""

from __future__ import annotations

from collections.abc import Sequence

from ..records import Example, Verdict
from .base import Assessment, assess_extracted


class GoldMatch:
    """Verdict 1.0/True when the answer is equivalent to the gold answer; unparseable → correct=None."""

    name = "gold-match"
    uses_gold = True

    def __init__(self, task, backend=None) -> None:
        self.task = task

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
        """Extract each text's answer and match it to the gold answer; no model call, so no steps."""
        return assess_extracted(self, examples, texts)

    def verify(self, examples: Sequence[Example], answers: Sequence[Sequence[str | None]]
               ) -> list[list[Verdict]]:
        out = []
        for ex, cands in zip(examples, answers, strict=True):
            row = []
            for a in cands:
                ok = self.task.check(ex, a)
                if ok is None:
                    why = "unparseable" if a is None else "no gold answer"
                    row.append(Verdict(score=None, correct=None, reason=why))
                else:
                    row.append(Verdict(score=float(ok), correct=ok, reason="match" if ok else "mismatch"))
            out.append(row)
        return out
