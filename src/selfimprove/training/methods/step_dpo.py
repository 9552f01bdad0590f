"""Step-DPO — "Step-DPO: Step-wise Preference Optimization for Long-chain Reasoning of LLMs" (Lai et al. 2024,
arXiv:2406.18629).

Each round: ``n`` samples per training example with round r-1's model, verified against gold; every wrong
sample (at most ``max_wrong`` per example) is split into the task's steps and each step labelled by
``label_rollouts`` completions from its prefix (Math-Shepherd's estimate, ``prm.rollout_labels``;
GOLD-READING).
The first step from which no rollout reaches the gold answer is the error: it is the rejected step, and the
chosen step is the first step of a rollout from the prefix before it that did reach the gold answer (from the
empty prefix: the first step of a correct sample). Prompt = task prompt + the steps before the error; no EOS
after a step inside a solution. DPO continues from round r-1's model.

Not covered: the paper's GPT-4 localisation of the erroneous step (rollouts locate it here) and its data
pipeline's in-distribution rectification by the model itself beyond the rollouts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...records import Example, Step, Trace
from ...strategies.base import make_trace, score_traces
from ..method import Built, Method, pair_report, sample, seed_of, verified
from ..preferences import Provenance
from ..search_data import LABELS_STEP, first_error_pairs
from .mcts_dpo import generated_tokens


@dataclass(frozen=True)
class StepDPO(Method):
    """DPO on the first wrong step of a wrong sample against a correct next step from the same prefix."""

    name = "step-dpo"
    paper = "Step-DPO: Step-wise Preference Optimization for Long-chain Reasoning of LLMs, arXiv:2406.18629"
    objective = "dpo"
    reads_gold = True
    guarded = True

    label_rollouts: int = 4
    """Rollouts per step prefix that label the steps of a wrong sample."""
    max_wrong: int = 2
    """Wrong samples labelled per example (the first ones drawn)."""

    def validate(self, cfg) -> None:
        if self.label_rollouts < 1 or self.max_wrong < 1:
            raise ValueError(
                f"{self.name}: label_rollouts and max_wrong must be >= 1, got {self.label_rollouts}, "
                f"{self.max_wrong}"
            )

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        from ..data import trainable
        from ..prm import rollout_labels

        task, cfg = loop.task, loop.cfg
        steps = verified(task, examples, sample(backend, task, examples, cfg, r))
        wrong = [
            [c.text for c, v in zip(s.completions, s.verdicts) if v.correct is False and trainable(c)][
                : self.max_wrong
            ]
            for s in steps
        ]
        rows, calls = rollout_labels(
            backend,
            task,
            examples,
            wrong,
            m=self.label_rollouts,
            rule="some",
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            seed=seed_of(cfg, r) + 700,
            round_idx=r,
        )
        out = []
        for e, s in zip(examples, steps):
            mine = [x.to_dict() for x in rows if x.example_id == e.id]
            extra = [c for c in calls if c.info["example_id"] == e.id]
            if mine:
                extra.append(Step(kind=LABELS_STEP, info={"rows": mine, "rule": "some", "reads_gold": True}))
            n_correct = sum(bool(v.correct) for v in s.verdicts)
            out.append(
                make_trace(
                    e,
                    self.name,
                    [s, *extra],
                    initial_answer=s.answers[0],
                    final_answer=s.answers[0],
                    confidence=n_correct / len(s.answers),
                    correct_samples=n_correct,
                    labelled=len(mine),
                )
            )
        return score_traces(task, examples, out)

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        from ...tasks.steps import step_format

        prov = Provenance(r, model=str(loop.path(r - 1)), seed=seed_of(loop.cfg, r))
        pairs, stats = first_error_pairs(traces, step_format(loop.task).split, prov=prov, method=self.name)
        stats["generated_tokens"] = generated_tokens(traces)
        return Built(pairs=pairs, stats=pair_report(self, loop, r, traces, examples, stats, pairs))
