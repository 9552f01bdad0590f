"""ScPO — "Self-Consistency Preference Optimization" (Prasad et al. 2024, arXiv:2411.04109).

No gold: ``n`` samples per training example; chosen = a sample of the most-voted answer, rejected = a sample
of the least-voted answer, weighted by the vote margin (votes(chosen) − votes(rejected)) / n in the weighted
DPO loss (``dpo.WeightedDPOTrainer``; by default DPO + NLL on the chosen response, the paper's combined
objective).
Pools whose majority share is below ``threshold``, and ties for the majority, give no pair (counted). DPO
continues from the previous round's model.

Not covered: the paper's semi-supervised variant with some gold labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...records import Example, Trace
from ...strategies.base import score_traces
from ..method import Built, Method, pair_report, sample, seed_of, voted_traces
from ..preferences import Provenance, scpo_pairs


@dataclass(frozen=True)
class ScPO(Method):
    """DPO on most- vs least-voted answers, weighted by the vote margin; no gold."""

    name = "scpo"
    paper = "Self-Consistency Preference Optimization, arXiv:2411.04109"
    objective = "dpo"
    guarded = True

    threshold: float = 0.5
    """Minimum majority vote share (votes / n, unparseable samples included) for a pair."""
    include_unparseable: bool = False
    """An unparseable sample may be the rejected response (0 votes)."""

    def validate(self, cfg) -> None:
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"{self.name}: threshold must be in [0, 1], got {self.threshold}")

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        steps = sample(backend, loop.task, examples, loop.cfg, r)
        return score_traces(loop.task, examples, voted_traces(self.name, loop.task, examples, steps))

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        prov = Provenance(r, model=str(loop.path(r - 1)), seed=seed_of(loop.cfg, r))
        pairs, stats = scpo_pairs(traces, loop.task.equivalent, prov=prov, threshold=self.threshold,
                                  suffix=loop.cfg.target_suffix, include_unparseable=self.include_unparseable)
        return Built(pairs=pairs, stats=pair_report(self, loop, r, traces, examples, stats, pairs))

    def sample_rewards(self, task, trace: Trace) -> list[float | None]:
        """A sample's reward is its answer's vote count (0 when unparseable)."""
        from ...answers import group_answers

        answers = trace.steps[0].answers
        votes = [0] * len(answers)
        for group in group_answers(answers, task.equivalent):
            for i in group:
                votes[i] = len(group)
        return votes
