"""Pluggable rewards for GRPO, one family per module, parsed from a spec such as ``majority+0.1*format``.

A reward scores the answers of one group (the samples of one prompt) at a time::

    reward.score(task, example, answers, texts) -> list[float]   # one per sample; None answers score 0

and keeps counters of what it saw, with gold-reading guards that are reported and never used
(``reward.stats()``, ``base.py``). ``as_trl(reward, task, examples, max_tokens)`` is the callable TRL's
``GRPOTrainer`` calls; it groups the adjacent completions of a prompt by the ``id`` column, extracts answers
(a completion that used up ``max_tokens`` tokens is truncated: None) and scores.

- ``gold`` (``base.py``): 1 when the task's checker accepts the answer — the only reward that reads gold
  answers (``reads_gold``; a sum containing it reads gold too);
- ``format`` (``base.py``): 1 when an answer could be extracted (a shaping term);
- ``majority`` and ``restrain`` (``vote.py``): TTRL's majority agreement with an optional minimum vote share
  (the group's own majority, or a separate larger voting pool's), and a RESTRAIN-style vote-share reward
  that penalises low-agreement prompts;
- ``self-judge`` (``self_judge.py``): P(True) of the policy's own verify format;
- sums: ``parse_reward("majority+0.1*format")`` (``Weighted``).

Not covered: Co-Reward's cross-question agreement.
"""

from __future__ import annotations

from .base import FormatReward, GoldReward, Reward, Weighted, as_trl
from .self_judge import SelfJudgeReward
from .vote import MajorityReward, RestrainReward

__all__ = [
    "REWARDS",
    "FormatReward",
    "GoldReward",
    "MajorityReward",
    "RestrainReward",
    "Reward",
    "SelfJudgeReward",
    "Weighted",
    "as_trl",
    "parse_reward",
]

REWARDS = {"gold": GoldReward, "majority": MajorityReward, "restrain": RestrainReward,
           "self-judge": SelfJudgeReward, "format": FormatReward}
"""Reward names as ``--reward`` takes them (joined by ``+``, each optionally ``<weight>*``)."""


def parse_reward(spec: str, min_share: float | None = None, penalty: float = 0.5) -> Reward:
    """A reward from its spec: ``gold``, ``majority``, ``self-judge``, ``restrain+0.1*format``. ``min_share``
    goes to majority (default 0: never skip) and restrain (default 0.5), ``penalty`` to restrain."""
    parts: list[tuple[float, Reward]] = []
    for term in spec.split("+"):
        weight, _, name = term.strip().rpartition("*")
        if name not in REWARDS:
            raise ValueError(f"unknown reward {name!r} in {spec!r}: use {', '.join(REWARDS)} joined by '+'")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"reward weight {weight!r} in {spec!r} is not a number") from None
        if name == "majority":
            reward: Reward = MajorityReward(0.0 if min_share is None else min_share)
        elif name == "restrain":
            reward = RestrainReward(0.5 if min_share is None else min_share, penalty)
        else:
            reward = REWARDS[name]()
        parts.append((w, reward))
    return parts[0][1] if len(parts) == 1 and parts[0][0] == 1.0 else Weighted(parts)


def advantage_offsets(reward: Reward):
    """The hook ``train_grpo`` calls after TRL computed a batch's advantages (ids in order → per completion
    an advantage to impose, or None), or None when no part of ``reward`` imposes any."""
    parts = [r for _, r in reward.parts] if isinstance(reward, Weighted) else [reward]
    hooks = [r.advantage_offsets for r in parts if hasattr(r, "advantage_offsets")]
    if not hooks:
        return None

    def offsets(ids):
        out = [None] * len(ids)
        for hook in hooks:
            out = [x if x is not None else o for x, o in zip(hook(ids), out)]
        return out

    return offsets
