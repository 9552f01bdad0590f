"""A trained process reward model (``training/prm.py``) as a verifier of whole solutions and as a step value.

- ``PRMVerifier`` (verifier ``prm``): splits each candidate completion into the task's steps (or the
  delimiter the PRM was trained with, ``prm.json``), scores
  every step
  with the PRM (P(good) at the step's last token) and aggregates them (``aggregate``: ``last`` — the PRM's
  estimate at the end; ``min`` — the weakest step, as in Lightman et al. 2023, "Let's Verify Step by Step",
  arXiv:2305.20050; ``product``). ``best-of-n:verifier=prm:path=DIR`` and ``weighted-best-of-n`` select with
  it (a second nested option goes after ``;``: ``verifier=prm:path=DIR;aggregate=min``). The PRM never reads
  gold answers at inference (its *training labels* did).
- ``PRMValue`` (step value ``prm``, ``beam:value=prm,prm=DIR``): the same score of a partial solution, for
  beam, MCTS and DVTS.

The PRM is a separate model: it generates nothing, so it adds no generated tokens; the tokens it read are
recorded (``prm_tokens``) beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from ..records import Example, Step, Verdict
from ..tasks.steps import step_format
from .base import Assessment, verify_answers


@cache
def _scorer(path: str):
    from ..training.prm_score import PRMScorer

    return PRMScorer(path)


def load_scorer(path: str):
    """The PRM saved at ``path`` (loaded once per process)."""
    from pathlib import Path

    if not path:
        raise ValueError(
            "the PRM needs its directory: verifier=prm:path=DIR (or value=prm,prm=DIR); train one "
            "with scripts/prm_study.py or `selfimprove train --method rest-mcts` (round-<r>/prm)"
        )
    return _scorer(str(Path(path).resolve()))


class PRMVerifier:
    """Scores a solution by a trained PRM: its step scores aggregated by ``aggregate``."""

    name, uses_gold = "prm", False

    def __init__(self, backend, task, path: str = "", aggregate: str = "last") -> None:
        from ..training.prm_score import AGGREGATES

        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
        self.task, self.aggregate, self.path = task, aggregate, path
        self.scorer = load_scorer(path)
        self.fmt = step_format(task, getattr(self.scorer, "delimiter", None))  # the steps it learned

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
        from ..training.prm_score import aggregate

        prompts, steps, owner = [], [], []
        for i, (e, row) in enumerate(zip(examples, texts)):
            for t in row:
                prompts.append(self.task.prompt(e))
                steps.append(self.fmt.split(t))
                owner.append(i)
        before = self.scorer.scored_tokens
        scores = self.scorer.score(prompts, steps)
        verdicts: list[list[Verdict]] = [[] for _ in examples]
        per: list[list[list[float]]] = [[] for _ in examples]
        for i, s in zip(owner, scores):
            v = aggregate(s, self.aggregate)
            per[i].append(s)
            verdicts[i].append(
                Verdict(
                    score=v,
                    correct=None if v is None else v >= 0.5,
                    reason=f"prm:{self.aggregate}" if v is not None else "no steps",
                )
            )
        spent = self.scorer.scored_tokens - before
        steps_out = [
            [
                Step(
                    kind="prm",
                    info={
                        "step_scores": per[i],
                        "aggregate": self.aggregate,
                        "prm": self.path,
                        "prm_tokens": spent if i == 0 else 0,
                    },
                )
            ]
            for i in range(len(examples))
        ]
        return Assessment(verdicts, steps_out)

    def verify(self, examples, answers):
        return verify_answers(self, examples, answers)


class PRMValue:
    """Step value ``prm``: the PRM's aggregated step scores of the partial solution (default: the last step's,
    the PRM's estimate that the prefix still leads to the right answer)."""

    name, uses_gold = "prm", False

    def __init__(self, task, fmt, path: str, aggregate: str = "last") -> None:
        from ..training.prm_score import AGGREGATES

        if aggregate not in AGGREGATES:
            raise ValueError(f"prm_aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
        self.task, self.fmt, self.aggregate = task, fmt, aggregate
        self.scorer = load_scorer(path)

    def evaluate(self, partials, seed: int = 0):
        from ..training.prm_score import aggregate
        from .step_values import Valuation

        steps = [self.fmt.split(p.prefix) for p in partials]
        scores = self.scorer.score([p.prompt for p in partials], steps)
        values, parts = [], []
        for s in scores:
            v = aggregate(s, self.aggregate)
            values.append(v)
            parts.append({"prm": v, "prm_steps": s} if v is not None else {"prm": None, "why": "no steps"})
        return Valuation(values, parts, [[] for _ in partials])
