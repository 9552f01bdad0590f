"""ReST^EM — "Beyond Human Data: Scaling Self-Training for Problem-Solving with Language Models" (Singh et al.
2023, arXiv:2312.06585).

E-step: ``n`` samples per training example from the current model, kept when the gold verifier accepts them
(deduplicated, at most ``max_per_example`` per example). M-step: fine-tune the *base* model on this round's
kept data — every round restarts from the base, so a round's model reflects only its own, better data.

Not covered: the per-problem cap tuning and the paper's multi-iteration schedules.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...records import Example, Trace
from ...strategies.base import score_traces
from ..data import correct_rows
from ..method import Built, Method, gold_traces, sample, sft_report, verified


@dataclass(frozen=True)
class RestEM(Method):
    """SFT of the base model on this round's gold-verified samples."""

    name = "rest-em"
    paper = ("Beyond Human Data: Scaling Self-Training for Problem-Solving with Language Models, "
             "arXiv:2312.06585")
    objective = "sft"
    reads_gold = True
    restarts_from_base = True

    max_per_example: int | None = 4
    """Cap on distinct kept completions per example (None: no cap)."""

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        steps = verified(loop.task, examples, sample(backend, loop.task, examples, loop.cfg, r))
        return score_traces(loop.task, examples, gold_traces(self.name, examples, steps))

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        rows = correct_rows(traces, suffix=loop.cfg.target_suffix, max_per_example=self.max_per_example,
                            round_idx=r)
        return Built(rows=rows, stats=sft_report(self, loop.task, examples, traces, rows))
