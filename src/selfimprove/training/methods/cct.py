"""CCT — Confidence and Critique Improvement Tuning, from "Confidence v.s. Critique: A Decomposition of
Self-Correction Capability for LLMs" (Yang et al. 2024, arXiv:2412.19513).

Each round: ``n`` samples per training example, verified against gold; SFT rows in the task's review
(self-correction) format: a correct answer under review is kept as it is (confidence, CL), a wrong one is
replaced by the right answer (critique, CS) — at most ``max_per_kind`` of each per example — beside the
solve rows of the correct samples. Every evaluation measures the self-correction step: CL, CS and RSS.

Not covered: the paper's mixing ratios with vanilla SFT data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...records import Example, Trace
from ...strategies.base import score_traces
from ..method import Built, Method, gold_traces, pair_report, sample, verified
from ..preferences import cct_rows, references


@dataclass(frozen=True)
class CCT(Method):
    """SFT on confidence and critique rows in the task's review format."""

    name = "cct"
    paper = ("Confidence v.s. Critique: A Decomposition of Self-Correction Capability for LLMs, "
             "arXiv:2412.19513")
    objective = "sft"
    reads_gold = True
    guarded = True

    max_per_kind: int = 2
    """Confidence rows and critique rows per example, each at most this."""

    def validate(self, cfg) -> None:
        if self.max_per_kind < 1:
            raise ValueError(f"{self.name}: max_per_kind must be >= 1, got {self.max_per_kind}")

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        steps = verified(loop.task, examples, sample(backend, loop.task, examples, loop.cfg, r))
        return score_traces(loop.task, examples, gold_traces(self.name, examples, steps))

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        from ...prompts import formats

        task, by_id = loop.task, {e.id: e for e in examples}
        fmt = formats(task)
        # the task's own correct format where it has one (the built-in task: " #<answer>" in format 1, a
        # question-order solution in format 2)
        targets = {e.id: target for e in examples if (target := task.correct_target(e)) is not None}
        rows, stats = cct_rows(traces, references(task, examples),
                               lambda i, text: fmt.correct(by_id[i], text), round_idx=r,
                               suffix=loop.cfg.target_suffix, max_per_kind=self.max_per_kind,
                               review_targets=targets)
        return Built(rows=rows, stats=pair_report(self, loop, r, traces, examples, stats, rows=rows))

    def evaluate(self, loop, r: int, backend, dev: list[Example]) -> dict[str, Any]:
        from ..guards import correction

        return {"correction": correction(loop.task, backend, dev, loop.cfg.max_tokens)}
