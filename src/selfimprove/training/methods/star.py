"""STaR — "STaR: Bootstrapping Reasoning With Reasoning" (Zelikman et al. 2022, arXiv:2203.14465).

Each round: ``n`` samples per training example from the current model; the task's gold verifier marks each
answer; the correct completions become SFT rows (deduplicated, at most ``max_per_example`` per example). For
an example no sample solved, *rationalise*: prompt with the gold answer as a hint (the task's ``hint_prompt``)
and keep the result when it is correct — trained under the plain prompt, without the hint. Training continues
from the previous round's model (the paper restarts from the base; ``rest-em`` does).

Not covered: the paper's few-shot rationale prompts and its growing step schedule.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...records import Example, SamplingParams, Step, Trace
from ...strategies.base import generate_step, score_traces
from ..data import correct_rows
from ..method import Built, Method, gold_traces, sample, seed_of, sft_report, verified


@dataclass(frozen=True)
class Star(Method):
    """SFT on gold-verified samples, with rationalisation of the examples no sample solved."""

    name = "star"
    paper = "STaR: Bootstrapping Reasoning With Reasoning, arXiv:2203.14465"
    objective = "sft"
    reads_gold = True

    rationalize: bool = True
    """Rationalise examples no sample solved (gold answer as a hint; trained without the hint)."""
    rationalize_n: int = 1
    """Completions per hinted prompt."""
    rationalize_temperature: float = 0.0
    """Temperature of the hinted completions (0 = greedy)."""
    max_per_example: int | None = 4
    """Cap on distinct kept completions per example (None: no cap)."""

    def validate(self, cfg) -> None:
        if self.rationalize_n < 1 or self.rationalize_temperature < 0:
            raise ValueError(f"{self.name}: rationalize_n must be >= 1 and rationalize_temperature >= 0, got "
                             f"{self.rationalize_n}, {self.rationalize_temperature}")
        if self.max_per_example is not None and self.max_per_example < 1:
            raise ValueError(f"{self.name}: max_per_example must be >= 1 or None, got {self.max_per_example}")

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        task = loop.task
        steps = verified(task, examples, sample(backend, task, examples, loop.cfg, r))
        hinted = self.rationalise(loop, r, backend, examples, steps) if self.rationalize else {}
        return score_traces(task, examples, gold_traces(self.name, examples, steps, hinted))

    def rationalise(self, loop, r: int, backend, examples: list[Example], steps: list[Step]
                    ) -> dict[int, Step]:
        """For each example no sample solved: a hinted generation step (verified), keyed by example index;
        ``info['train_prompt']`` is the plain prompt the row is trained under."""
        task, cfg = loop.task, loop.cfg
        todo = [i for i, s in enumerate(steps)
                if examples[i].answer is not None and not any(v.correct for v in s.verdicts)]
        if not todo:
            return {}
        params = SamplingParams(n=self.rationalize_n, temperature=self.rationalize_temperature,
                                top_p=cfg.top_p, max_tokens=cfg.max_tokens, seed=seed_of(cfg, r) + 500)
        todo_ex = [examples[i] for i in todo]
        raw = generate_step(backend, task, [task.hint_prompt(e) for e in todo_ex], params, kind="rationalise")
        raw = verified(task, todo_ex, raw)
        return {i: dataclasses.replace(s, info={**s.info, "train_prompt": task.prompt(examples[i])})
                for i, s in zip(todo, raw)}

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        rows = correct_rows(traces, suffix=loop.cfg.target_suffix, max_per_example=self.max_per_example,
                            round_idx=r)
        return Built(rows=rows, stats=sft_report(self, loop.task, examples, traces, rows))
