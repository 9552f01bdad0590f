"""The reward contract, its gold-reading guards, the gold and format rewards, weighted sums and TRL's adapter.

``Reward.score(task, example, answers, texts)`` scores one group (the samples of one prompt, adjacent in TRL's
batch): ``answers`` are the extracted answers (None: unparseable or truncated), ``texts`` the completions as
written (the self-judge reads them). Every reward also records, from gold and never fed back into a reward,
the guards of ``stats()``:

- ``reward_accuracy``: share of completions where "reward > ``positive_above``" equals the gold verdict;
- ``pair_accuracy``: over the (correct, wrong) pairs of completions within one group — the comparisons
  GRPO's group-relative advantage makes — the share the reward orders right (ties count one half);
- ``majority_wrong_share`` / ``confident_wrong_share``: of the groups with a parseable majority, the share
  whose majority answer is wrong / wrong while holding at least half of the group's votes (the "confidently
  wrong majority" a majority reward then teaches);
- ``distinct_per_group``: distinct parseable answers per group (sample diversity).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ...records import Example


class Reward:
    """Base class: ``score`` one group's answers; counters in ``self.counts``."""

    name = ""
    reads_gold = False
    positive_above = 0.5
    """A reward above this says 'correct' (``reward_accuracy``); rewards are in [0, 1] unless stated."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def score(self, task, example: Example, answers: Sequence[str | None],
              texts: Sequence[str] | None = None) -> list[float]:
        answers = list(answers)
        self.counts["prompts"] += 1
        self.counts["completions"] += len(answers)
        self.counts["unparsed"] += sum(a is None for a in answers)
        out = self._score(task, example, answers, None if texts is None else list(texts))
        self.counts["reward_sum"] += sum(out)
        self._guards(task, example, answers, out)
        return out

    def _score(self, task, example: Example, answers: list[str | None], texts: list[str] | None
               ) -> list[float]:
        raise NotImplementedError

    def bind(self, backend) -> None:
        """Give the reward the policy being trained (the self-judge reads it; others ignore it)."""

    def _guards(self, task, example: Example, answers: list[str | None], rewards: list[float]) -> None:
        from ...answers import group_answers, majority

        c = self.counts
        groups = group_answers(answers, task.equivalent)
        c["distinct_answers"] += len(groups)
        if example.answer is None:
            return
        gold = [a is not None and bool(task.check(example, a)) for a in answers]
        c["gold_known"] += len(answers)
        c["gold_correct"] += sum(gold)
        c["reward_agrees_gold"] += sum((r > self.positive_above) == g for r, g in zip(rewards, gold))
        good = [r for r, g in zip(rewards, gold) if g]
        bad = [r for r, g in zip(rewards, gold) if not g]
        c["pairs"] += len(good) * len(bad)
        c["pairs_ordered"] += sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in good for y in bad)
        winner, votes, _ = majority(answers, task.equivalent)
        if winner is not None:
            c["majority_prompts"] += 1
            wrong = not task.check(example, winner)
            c["majority_wrong"] += wrong
            c["confident_wrong"] += wrong and votes >= len(answers) / 2

    def stats(self) -> dict[str, Any]:
        """Counters and the shares derived from them (an empty denominator gives None, never 0)."""
        c = self.counts
        n = c["completions"]
        out: dict[str, Any] = {"reward": self.name, "reads_gold": self.reads_gold, **dict(c)}
        out["unparsed_share"] = _share(c["unparsed"], n)
        out["mean_reward"] = c["reward_sum"] / n if n else None
        out["gold_accuracy"] = _share(c["gold_correct"], c["gold_known"])
        out["reward_accuracy"] = _share(c["reward_agrees_gold"], c["gold_known"])
        out["pair_accuracy"] = _share(c["pairs_ordered"], c["pairs"])
        out["majority_wrong_share"] = _share(c["majority_wrong"], c["majority_prompts"])
        out["confident_wrong_share"] = _share(c["confident_wrong"], c["majority_prompts"])
        out["distinct_per_group"] = _share(c["distinct_answers"], c["prompts"])
        return out


def _share(k: float, n: int) -> float | None:
    return k / n if n else None


class GoldReward(Reward):
    """1 when the task's checker accepts the sample's answer, else 0 (reads the gold answer)."""

    name = "gold"
    reads_gold = True

    def _score(self, task, example, answers, texts):
        return [1.0 if a is not None and task.check(example, a) else 0.0 for a in answers]


class FormatReward(Reward):
    """1 when an answer could be extracted from the sample, else 0."""

    name = "format"

    def _score(self, task, example, answers, texts):
        return [0.0 if a is None else 1.0 for a in answers]


class Weighted(Reward):
    """A weighted sum of rewards (each keeps its own counters); it says 'correct' above half the sum of the
    positive weights."""

    def __init__(self, parts: Sequence[tuple[float, Reward]]) -> None:
        super().__init__()
        if not parts:
            raise ValueError("a weighted reward needs at least one part")
        self.parts = list(parts)
        self.name = "+".join(f"{w:g}*{r.name}" for w, r in self.parts)
        self.reads_gold = any(r.reads_gold for _, r in self.parts)
        self.positive_above = 0.5 * sum(max(w, 0.0) for w, _ in self.parts)

    def _score(self, task, example, answers, texts):
        total = [0.0] * len(answers)
        for w, r in self.parts:
            total = [t + w * s for t, s in zip(total, r.score(task, example, answers, texts))]
        return total

    def bind(self, backend) -> None:
        for _, r in self.parts:
            r.bind(backend)

    def stats(self):
        return {**super().stats(), "parts": [{"weight": w, **r.stats()} for w, r in self.parts]}


def as_trl(reward: Reward, task, examples: Sequence[Example], max_tokens: int | None = None):
    """The callable TRL's GRPOTrainer calls: groups adjacent completions of one prompt (``id`` column),
    extracts answers (a completion of ``max_tokens`` or more tokens is truncated: None) and scores them."""
    by_id = {e.id: e for e in examples}

    def reward_fn(prompts, completions, completion_ids=None, id=None, **_: Any) -> list[float]:
        if id is None:
            raise ValueError("the GRPO data set needs an 'id' column naming each prompt's example")
        texts = list(completions)
        answers = task.extract_many(texts)
        if max_tokens is not None and completion_ids is not None:
            answers = [None if len(ids) >= max_tokens else a for a, ids in zip(answers, completion_ids)]
        out: list[float] = []
        start = 0
        while start < len(answers):
            end = start
            while end < len(answers) and id[end] == id[start]:
                end += 1
            out.extend(reward.score(task, by_id[id[start]], answers[start:end], texts[start:end]))
            start = end
        return out

    reward_fn.__name__ = f"reward_{reward.name}".replace("*", "x").replace("+", "_").replace("-", "_")
    return reward_fn
