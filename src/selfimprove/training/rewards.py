"""Pluggable rewards for GRPO: the task's gold checker, majority-vote agreement (TTRL), format, weighted sums.

A reward scores the answers of one group (the ``n`` samples of one prompt) at a time::

    reward.score(task, example, answers) -> list[float]       # one per sample; None answers score 0

and keeps counters of what it saw (``reward.stats()``): prompts, completions, unparseable or truncated
completions (answer None, reward 0, counted), skipped prompts. ``as_trl(reward, task, examples, max_tokens)``
is the callable TRL's ``GRPOTrainer`` calls; it groups the adjacent completions of a prompt by the ``id``
column, extracts answers (a completion that used up ``max_tokens`` tokens is truncated: None) and scores.

- ``gold``: 1 when the task's checker accepts the answer (reads gold answers: ``reads_gold = True``).
- ``majority``: the label is the majority answer of the group; reward 1 for agreeing with it. From
  "TTRL: Test-Time Reinforcement Learning" (Zuo et al. 2025, arXiv:2504.16084). Below ``min_share`` (votes of
  the winner over all samples, unparseable ones included) every sample of the prompt gets 0 and the prompt is
  counted as skipped. Its guards read gold but never feed a reward: how often the reward equals the gold
  reward (``reward_accuracy``), the share of voted prompts whose majority is wrong, distinct answers per group.
- ``format``: 1 when an answer could be extracted (a shaping term to add to another reward).
- ``Weighted``: a weighted sum of rewards (``parse_reward("majority+0.1*format")``).

Not covered: a separate, larger voting pool, self-judge rewards, RESTRAIN-style penalties.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..records import Example

__all__ = ["REWARDS", "FormatReward", "GoldReward", "MajorityReward", "Reward", "Weighted", "as_trl",
           "parse_reward"]


class Reward:
    """Base class: ``score`` one group's answers; counters in ``self.counts``."""

    name = ""
    reads_gold = False

    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def score(self, task, example: Example, answers: Sequence[str | None]) -> list[float]:
        self.counts["prompts"] += 1
        self.counts["completions"] += len(answers)
        self.counts["unparsed"] += sum(a is None for a in answers)
        return self._score(task, example, list(answers))

    def _score(self, task, example: Example, answers: list[str | None]) -> list[float]:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        """Counters and the shares derived from them (0 prompts: shares are None, never 0)."""
        c = dict(self.counts)
        n = c.get("completions", 0)
        out: dict[str, Any] = {"reward": self.name, "reads_gold": self.reads_gold, **c}
        out["unparsed_share"] = c.get("unparsed", 0) / n if n else None
        out["mean_reward"] = c.get("reward_sum", 0.0) / n if n else None
        return out


class GoldReward(Reward):
    """1 when the task's checker accepts the sample's answer, else 0 (reads the gold answer)."""

    name = "gold"
    reads_gold = True

    def _score(self, task, example, answers):
        out = [1.0 if a is not None and task.check(example, a) else 0.0 for a in answers]
        self.counts["reward_sum"] += sum(out)
        return out


class FormatReward(Reward):
    """1 when an answer could be extracted from the sample, else 0."""

    name = "format"

    def _score(self, task, example, answers):
        out = [0.0 if a is None else 1.0 for a in answers]
        self.counts["reward_sum"] += sum(out)
        return out


class MajorityReward(Reward):
    """TTRL: agreement with the group's majority answer; prompts whose winner has under ``min_share`` of the
    votes are skipped (all rewards 0)."""

    name = "majority"

    def __init__(self, min_share: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= min_share <= 1.0:
            raise ValueError(f"majority reward: min_share must be in [0, 1], got {min_share}")
        self.min_share = min_share

    def _score(self, task, example, answers):
        from ..answers import group_answers, majority

        winner, votes, _ = majority(answers, task.equivalent)
        self.counts["distinct_answers"] += len(group_answers(answers, task.equivalent))
        if winner is None or votes / len(answers) < self.min_share:
            self.counts["skipped"] += 1
            out = [0.0] * len(answers)
        else:
            self.counts["voted"] += 1
            self.counts["majority_wrong"] += not task.check(example, winner)  # a guard, never a reward
            out = [1.0 if a is not None and task.equivalent(a, winner) else 0.0 for a in answers]
        gold = [a is not None and bool(task.check(example, a)) for a in answers]
        self.counts["reward_agrees_gold"] += sum((r > 0) == g for r, g in zip(out, gold))
        self.counts["reward_sum"] += sum(out)
        return out

    def stats(self):
        out = super().stats()
        c = self.counts
        out.update({k: c[k] for k in ("voted", "skipped", "majority_wrong")}, min_share=self.min_share)
        out["reward_accuracy"] = c["reward_agrees_gold"] / c["completions"] if c["completions"] else None
        out["majority_wrong_share"] = c["majority_wrong"] / c["voted"] if c["voted"] else None
        out["skipped_share"] = c["skipped"] / c["prompts"] if c["prompts"] else None
        out["distinct_per_group"] = c["distinct_answers"] / c["prompts"] if c["prompts"] else None
        return out


class Weighted(Reward):
    """A weighted sum of rewards (each keeps its own counters)."""

    def __init__(self, parts: Sequence[tuple[float, Reward]]) -> None:
        super().__init__()
        if not parts:
            raise ValueError("a weighted reward needs at least one part")
        self.parts = list(parts)
        self.name = "+".join(f"{w:g}*{r.name}" for w, r in self.parts)
        self.reads_gold = any(r.reads_gold for _, r in self.parts)

    def _score(self, task, example, answers):
        total = [0.0] * len(answers)
        for w, r in self.parts:
            total = [t + w * s for t, s in zip(total, r.score(task, example, answers))]
        self.counts["reward_sum"] += sum(total)
        return total

    def stats(self):
        return {**super().stats(), "parts": [{"weight": w, **r.stats()} for w, r in self.parts]}


REWARDS = {"gold": GoldReward, "majority": MajorityReward, "format": FormatReward}
"""Reward names as ``--rl.reward`` takes them (joined by ``+``, each optionally ``<weight>*``)."""


def parse_reward(spec: str, min_share: float = 0.0) -> Reward:
    """A reward from its spec: ``gold``, ``majority``, ``majority+0.1*format``; ``min_share`` goes to
    majority."""
    parts: list[tuple[float, Reward]] = []
    for term in spec.split("+"):
        weight, _, name = term.strip().rpartition("*")
        if name not in REWARDS:
            raise ValueError(f"unknown reward {name!r} in {spec!r}: use {', '.join(REWARDS)} joined by '+'")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"reward weight {weight!r} in {spec!r} is not a number") from None
        parts.append((w, MajorityReward(min_share) if name == "majority" else REWARDS[name]()))
    return parts[0][1] if len(parts) == 1 and parts[0][0] == 1.0 else Weighted(parts)


def as_trl(reward: Reward, task, examples: Sequence[Example], max_tokens: int | None = None):
    """The callable TRL's GRPOTrainer calls: groups adjacent completions of one prompt (``id`` column),
    extracts answers (a completion of ``max_tokens`` or more tokens is truncated: None) and scores them."""
    by_id = {e.id: e for e in examples}

    def reward_fn(prompts, completions, completion_ids=None, id=None, **_: Any) -> list[float]:
        if id is None:
            raise ValueError("the GRPO data set needs an 'id' column naming each prompt's example")
        answers = task.extract_many(list(completions))
        if max_tokens is not None and completion_ids is not None:
            answers = [None if len(ids) >= max_tokens else a for a, ids in zip(answers, completion_ids)]
        out: list[float] = []
        start = 0
        while start < len(answers):
            end = start
            while end < len(answers) and id[end] == id[start]:
                end += 1
            out.extend(reward.score(task, by_id[id[start]], answers[start:end]))
            start = end
        return out

    reward_fn.__name__ = f"reward_{reward.name}".replace("*", "x").replace("+", "_")
    return reward_fn
