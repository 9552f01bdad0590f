"""Gold-labelled DPO: the control of the preference comparison — "Direct Preference Optimization: Your
Language Model is Secretly a Reward Model" (Rafailov et al. 2023, arXiv:2305.18290) on pairs labelled by gold.

Each round: ``n`` samples per training example, verified against gold; one (correct, incorrect) pair per
example that has both; DPO continues from the previous round's model. A self-labelled method that does not
beat it has not shown that its labels are worth their noise.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...records import Example, Trace
from ...strategies.base import score_traces
from ..method import Built, Method, gold_traces, pair_report, sample, seed_of, verified
from ..preferences import Provenance, correctness_pairs


@dataclass(frozen=True)
class GoldDPO(Method):
    """Control: DPO on one gold-labelled (correct, incorrect) sample pair per example."""

    name = "gold-dpo"
    objective = "dpo"
    reads_gold = True
    guarded = True

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        steps = verified(loop.task, examples, sample(backend, loop.task, examples, loop.cfg, r))
        return score_traces(loop.task, examples, gold_traces(self.name, examples, steps))

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        prov = Provenance(r, model=str(loop.path(r - 1)), seed=seed_of(loop.cfg, r))
        pairs, stats = correctness_pairs(traces, prov=prov, method=self.name, max_pairs_per_example=1,
                                         suffix=loop.cfg.target_suffix)
        return Built(pairs=pairs, stats=pair_report(self, loop, r, traces, examples, stats, pairs))
