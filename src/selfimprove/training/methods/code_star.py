"""Code-STaR: SFT on the model's own programs that pass the gold tests (execution-filtered rejection
sampling).

The execution-filtered variant of STaR ("STaR: Bootstrapping Reasoning With Reasoning", Zelikman et al. 2022,
arXiv:2203.14465) and ReST^EM ("Beyond Human Data: Scaling Self-Training for Problem-Solving with Language
Models", Singh et al. 2023, arXiv:2312.06585, whose code experiments filter by unit tests): each round, ``n``
samples per training problem; every program runs against the problem's gold tests in the sandbox (the code
task's ``execution`` verifier, an oracle signal: ``reads_gold = True``); the passing completions become SFT
rows (deduplicated, at most ``max_per_example`` per problem). On ``pal-arithmetic`` the filter is the printed
value against the gold number. Compare with ``no-filter`` (the control: the model's own greedy programs).

Not covered: rationalisation (a gold program as a hint would be copied, not reasoned to), test-suite
augmentation, and the paper's restart from the base model (``restart`` is not a setting here; see
``rest-em``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...records import Example, Trace
from ...strategies.base import score_traces
from ..data import complete_targets, correct_rows
from ..method import Built, Method, gold_traces, sample, sft_report, verified


@dataclass(frozen=True)
class CodeStar(Method):
    """SFT on sampled programs that pass the gold tests (run in the sandbox)."""

    name = "code-star"
    paper = "STaR: Bootstrapping Reasoning With Reasoning, arXiv:2203.14465"
    objective = "sft"
    reads_gold = True

    max_per_example: int | None = 4
    """Cap on distinct kept programs per problem (None: no cap)."""

    def validate(self, cfg) -> None:
        if self.max_per_example is not None and self.max_per_example < 1:
            raise ValueError(f"{self.name}: max_per_example must be >= 1 or None, got {self.max_per_example}")

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        task = loop.task
        if not task.code:
            raise ValueError(
                f"{self.name} needs a code task (humaneval, mbpp, pal-arithmetic), not '{task.name}'")
        steps = verified(task, examples, sample(backend, task, examples, loop.cfg, r))
        return score_traces(task, examples, gold_traces(self.name, examples, steps))

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        rows = correct_rows(complete_targets(loop.task, traces), suffix=loop.cfg.target_suffix,
                            max_per_example=self.max_per_example,
                            round_idx=r)
        return Built(rows=rows, stats=sft_report(self, loop.task, examples, traces, rows))
