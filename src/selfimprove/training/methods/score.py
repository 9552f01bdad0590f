"""SCoRe — "Training Language Models to Self-Correct via Reinforcement Learning" (Kumar et al. 2024,
arXiv:2409.12917): two-turn RL in which the model answers, is asked to review its answer, and the second
attempt is rewarded; stage 1 keeps the first attempt close to the base model (a KL constraint) while the
second is trained, stage 2 trains both with a reward bonus α·(r₂ − r₁) for improving (wrong → right) and
against breaking (right → wrong). The reward is the task's gold checker, as in the paper.

How it is built on TRL's ``GRPOTrainer``, which samples one completion per prompt and cannot run two turns:

- the **first attempts** are sampled by the project's backend with round r-1's model in the generate phase
  (``first_n`` per training example, the run's temperature), gold-checked and stored as the round's traces;
- TRL then trains on a mixed data set: one **first-turn row** per example (the plain prompt) and one
  **second-turn row** per first attempt (the task's fair review prompt around that attempt, ``correct``);
  TRL samples ``rl.num_generations`` completions of each row;
- rewards: a second attempt gets r₂ (stage 1) or r₂ + α·(r₂ − r₁) (stage 2), r₁ the gold verdict of the
  first attempt its prompt contains; a first attempt gets 0 in stage 1 — every sample of the group is equal,
  so its advantage is 0 and only TRL's KL term against the run's starting model (``rl.beta``, reference
  ``start``) acts on it: the stage-1 constraint — and its own gold reward in stage 2.

Approximations, said plainly: (1) the first attempts a second-turn row conditions on were sampled before the
round's updates (on-policy per round, not per step); (2) TRL has one β, so the first attempt's constraint and
the second's regulariser share it (the paper uses a larger one on the first attempt); (3) under GRPO's
per-group baseline r₁ is a constant of a second-turn group, so the bonus cannot tell wrong → right from
right → right within a group: it scales second-turn rewards by (1 + α) against first-turn ones, which only
matters because this method sets TRL's ``scale_rewards`` to 'batch' (with per-group scaling it would vanish
entirely). Correction transitions are measured every round twice: on the sampled training pairs
(``train.json``) and greedily on dev (``extra.json``: CL, CS, RSS, c→c/c→w/w→c/w→w).

Not covered: self-rewards for the two turns, more than two turns, the paper's edit-distance collapse measure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ...records import Example, Trace
from ...strategies.base import make_trace, score_traces
from ..method import Built, Method, sample, verified
from .grpo import collapse_reason, rl_guards, sampled_tokens


@dataclass(frozen=True)
class SCoRe(Method):
    """Two-turn self-correction RL (TRL GRPO on first- and second-turn prompts, gold reward, bonus α)."""

    name = "score"
    paper = "Training Language Models to Self-Correct via Reinforcement Learning, arXiv:2409.12917"
    objective = "grpo"
    reads_gold = True

    bonus: float = 1.0
    """Stage 2's α in r₂ + α·(r₂ − r₁) for a second attempt."""
    stage1_rounds: int = 1
    """Rounds of stage 1 (first attempt only KL-constrained) before stage 2."""
    first_n: int = 1
    """First attempts sampled per training example (each becomes one second-turn prompt)."""

    def validate(self, cfg) -> None:
        if self.bonus < 0 or self.stage1_rounds < 0 or self.first_n < 1:
            raise ValueError(f"{self.name}: bonus must be >= 0, stage1_rounds >= 0 and first_n >= 1, got "
                             f"{self.bonus}, {self.stage1_rounds}, {self.first_n}")
        if self.stage1_rounds and cfg.rl.beta <= 0:
            raise ValueError(f"{self.name}: stage 1 constrains the first attempt through TRL's KL term; set "
                             f"rl.beta > 0 (--rl-beta), got {cfg.rl.beta}")

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        task = loop.task
        steps = verified(task, examples, sample(backend, task, examples, loop.cfg, r, n=self.first_n))
        traces = [make_trace(e, self.name, [s], initial_answer=s.answers[0], final_answer=s.answers[0])
                  for e, s in zip(examples, steps)]
        return score_traces(task, examples, traces)

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        first = [bool(v.correct) for t in traces for v in t.steps[0].verdicts]
        return Built(stats={"prompts": len(examples), "first_attempts": len(first), "reads_gold": True,
                            "first_accuracy": sum(first) / len(first) if first else None,
                            "stage": 1 if r <= self.stage1_rounds else 2})

    def train(self, loop, r: int, model, tok, examples: list[Example], seed: int, save_to):
        """One GRPO call on the round's first- and second-turn rows; returns (model, train.json fields)."""
        from ..grpo import train_grpo

        task, cfg = loop.task, loop.cfg
        fmt = task.formats()
        traces = [Trace.from_dict(d) for d in loop.rd.read_jsonl(f"round-{r}/traces.jsonl")]
        rows: list[dict[str, Any]] = []
        for e, t in zip(examples, traces):
            rows.append({"prompt": task.prompt(e), "id": f"{e.id}#1", "example": e.id, "turn": 1,
                         "first": -1})
            step = t.steps[0]
            for k, (c, v) in enumerate(zip(step.completions, step.verdicts)):
                rows.append({"prompt": fmt.correct(e, c.text), "id": f"{e.id}#2.{k}", "example": e.id,
                             "turn": 2, "first": int(bool(v.correct))})
        stage = 1 if r <= self.stage1_rounds else 2
        reward = TwoTurnReward(task, {e.id: e for e in examples}, stage, self.bonus,
                               cfg.rl.max_completion_length)
        settings = dataclasses.replace(cfg.rl, seed=seed,
                                       trl_args={"scale_rewards": "batch", **cfg.rl.trl_args})
        reference = loop.path(0) if cfg.rl.reference == "start" else loop.path(r - 1)
        model, res = train_grpo(model, tok, rows, [reward], settings, save_to=save_to, reference=reference,
                                chat=loop.chat)
        stats = reward.stats()
        guards = rl_guards(loop, r, res, stats, cfg.rl, (model, tok))
        loop.rd.write_json(f"round-{r}/guards.json", {**guards, "transitions": stats["transitions"]})
        return model, {**res.to_dict(), "stage": stage, "rewards": stats, "reads_gold": True,
                       "sampled_tokens": sampled_tokens(res, cfg.rl)}

    def evaluate(self, loop, r: int, backend, dev: list[Example]) -> dict[str, Any]:
        from ..guards import correction

        return {"correction": correction(loop.task, backend, dev, loop.cfg.max_tokens)}

    def stop_reason(self, loop, r: int) -> str | None:
        return collapse_reason(loop, r)


class TwoTurnReward:
    """TRL's reward callable for SCoRe's rows (columns ``turn``, ``first``, ``example``), with the counts of
    the sampled correction transitions and the gold guards of the second attempts."""

    def __init__(self, task, by_id: dict[str, Example], stage: int, bonus: float, max_tokens: int) -> None:
        from ..rewards import GoldReward

        self.task, self.by_id, self.stage, self.bonus, self.max_tokens = task, by_id, stage, bonus, max_tokens
        self.second = GoldReward()  # counts and guards of the second attempts
        self.rows: list[tuple[str, bool, bool]] = []  # (example id, first correct, second correct)
        self.__name__ = "reward_score"

    def __call__(self, prompts, completions, completion_ids=None, turn=None, first=None, example=None,
                 id=None, **_):
        texts = list(completions)
        answers = self.task.extract_many(texts)
        if completion_ids is not None:
            answers = [None if len(ids) >= self.max_tokens else a for a, ids in zip(answers, completion_ids)]
        out: list[float] = []
        for i, (a, t, f, ex) in enumerate(zip(answers, turn, first, example)):
            ok = 1.0 if a is not None and self.task.check(self.by_id[ex], a) else 0.0
            if t == 1:
                out.append(0.0 if self.stage == 1 else ok)
                continue
            out.append(ok if self.stage == 1 else ok + self.bonus * (ok - f))
            self.rows.append((ex, bool(f), bool(ok)))
        start = 0  # the second attempts' gold guards, group by group (a row's samples are adjacent)
        while start < len(texts):
            end = start + 1
            while end < len(texts) and id[end] == id[start]:
                end += 1
            if turn[start] == 2:
                self.second.score(self.task, self.by_id[example[start]], answers[start:end], texts[start:end])
            start = end
        return out

    def stats(self) -> dict[str, Any]:
        from ...metrics.correction import correction

        out = self.second.stats()
        out["reward"], out["reads_gold"] = "score", True
        ids, first, second = zip(*self.rows) if self.rows else ((), (), ())
        out["transitions"] = correction(ids, first, second)["transitions"] if self.rows else None
        return out
