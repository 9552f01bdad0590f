"""LMSI — "Large Language Models Can Self-Improve" (Huang et al. 2022, arXiv:2210.11610).

No gold: ``n`` samples per training example; the pseudo-label is their majority answer (the task's
``equivalent`` groups answers); when its vote share — over all ``n`` samples, unparseable ones included —
reaches ``threshold``, the completions agreeing with it become SFT rows (deduplicated, at most
``max_per_example``). Training continues from the previous round's model. Gold answers are read only to report
the pseudo-labels' precision, never to select.

Not covered: the paper's chain-of-thought prompt mixtures and its "direct answer" format augmentation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...records import Completion, Example, Trace
from ...strategies.base import score_traces
from ..data import majority_rows
from ..method import Built, Method, sample, sft_report, voted_traces


@dataclass(frozen=True)
class Lmsi(Method):
    """SFT on the samples that agree with a confident majority vote; no gold."""

    name = "lmsi"
    paper = "Large Language Models Can Self-Improve, arXiv:2210.11610"
    objective = "sft"

    threshold: float = 0.5
    """Minimum majority vote share (votes / n, unparseable samples included) to accept a pseudo-label."""
    max_per_example: int | None = 4
    """Cap on distinct kept completions per example (None: no cap)."""

    def validate(self, cfg) -> None:
        if not 0 <= self.threshold <= 1:
            raise ValueError(f"{self.name}: threshold must be in [0, 1], got {self.threshold}")
        if self.max_per_example is not None and self.max_per_example < 1:
            raise ValueError(f"{self.name}: max_per_example must be >= 1 or None, got {self.max_per_example}")

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        steps = sample(backend, loop.task, examples, loop.cfg, r)
        return score_traces(loop.task, examples, voted_traces(self.name, loop.task, examples, steps))

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        rows, labels = majority_rows(traces, loop.task.equivalent, threshold=self.threshold,
                                     keep=self.keep(loop.task, examples), suffix=loop.cfg.target_suffix,
                                     max_per_example=self.max_per_example, round_idx=r)
        stats = sft_report(self, loop.task, examples, traces, rows, labels)
        return Built(rows=rows, labels=labels, stats=stats)

    def keep(self, task, examples: list[Example]) -> Callable[[str, Completion, str], bool] | None:
        """A per-completion filter on top of the vote, (example id, completion, label) -> keep? (None: keep
        every agreeing completion; easy-to-hard filters by length)."""
        return None
