"""SPIN — "Self-Play Fine-Tuning Converts Weak Language Models to Strong Language Models" (Chen et al. 2024,
arXiv:2401.01335).

Each round: one sample per training example from the current model; chosen = the reference (gold) solution,
rejected = the model's own sample (pairs where they are the same text are skipped); DPO against the previous
iterate as the reference model. Reads the reference solutions (``task.solution`` or ``meta['solution']``).

Not covered: the paper's schedule of growing the data with each iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...records import Example, Trace
from ...strategies.base import score_traces
from ..method import Built, Method, pair_report, sample, seed_of, voted_traces
from ..preferences import Provenance, references, spin_pairs


@dataclass(frozen=True)
class Spin(Method):
    """DPO of the reference solution over the model's own sample."""

    name = "spin"
    paper = "Self-Play Fine-Tuning Converts Weak Language Models to Strong Language Models, arXiv:2401.01335"
    objective = "dpo"
    reads_gold = True
    guarded = True

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        steps = sample(backend, loop.task, examples, loop.cfg, r, n=1)
        return score_traces(loop.task, examples, voted_traces(self.name, loop.task, examples, steps))

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        prov = Provenance(r, model=str(loop.path(r - 1)), seed=seed_of(loop.cfg, r))
        pairs, stats = spin_pairs(traces, references(loop.task, examples), prov=prov,
                                  suffix=loop.cfg.target_suffix)
        return Built(pairs=pairs, stats=pair_report(self, loop, r, traces, examples, stats, pairs))
