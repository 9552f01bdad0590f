"""The no-filter control: train on the model's own greedy answers, whatever they say.

It differs from the voting methods (``lmsi``) only in not filtering, so a gain of a self-improvement method
over this control is what its selection adds beyond "more training on the model's own outputs". Gold answers
are read only to report how often the greedy answers were right. On a code task a greedy completion cut at
``max_tokens`` after a closed code block trains on the text up to that block (``complete_targets``), as the
code methods' targets do, so that the control differs from them only in the filter.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...records import Example, SamplingParams, Trace
from ...strategies.base import generate_step, make_trace, score_traces
from ..data import complete_targets, greedy_rows
from ..method import Built, Method, seed_of, sft_report


@dataclass(frozen=True)
class NoFilter(Method):
    """Control: SFT on the model's own greedy answers, unfiltered."""

    name = "no-filter"
    objective = "sft"

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        task, cfg = loop.task, loop.cfg
        params = SamplingParams(n=1, temperature=0.0, max_tokens=cfg.max_tokens, seed=seed_of(cfg, r))
        steps = generate_step(backend, task, [task.prompt(e) for e in examples], params)
        traces = [make_trace(e, self.name, [s], initial_answer=s.answers[0], final_answer=s.answers[0])
                  for e, s in zip(examples, steps)]
        return score_traces(task, examples, traces)

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        targets = complete_targets(loop.task, traces) if loop.task.code else traces  # a closed code block
        rows = greedy_rows(targets, suffix=loop.cfg.target_suffix, round_idx=r)
        stats = sft_report(self, loop.task, examples, traces, rows)
        stats["greedy_train_accuracy"] = sum(bool(t.correct) for t in traces) / (len(traces) or 1)
        return Built(rows=rows, stats=stats)
