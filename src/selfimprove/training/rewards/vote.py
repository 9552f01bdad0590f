"""Label-free rewards from the group's own votes: majority agreement (TTRL) and a RESTRAIN-style penalty.

- ``majority``: the label is the majority answer of the group; reward 1 for agreeing with it. From "TTRL:
  Test-Time Reinforcement Learning" (Zuo et al. 2025, arXiv:2504.16084). Below ``min_share`` (votes of the
  winner over all samples, unparseable ones included) every sample of the prompt gets 0 and the prompt is
  counted as skipped. With a separate voting pool (``use_pool``: the majority of more samples drawn before
  training) the pool's winner and share replace the group's.
- ``restrain``: after "RESTRAIN: From Spurious Votes to Signals -- Self-Driven RL with Self-Penalization"
  (Yu et al. 2025, arXiv:2510.02172). Two of its three parts: (1) pseudo-label weighting — a sample's reward
  is the share of the group's votes its answer got (the whole answer distribution, not only the winner);
  (2) negative rollout penalisation — a prompt whose top answer has under ``min_share`` of the votes is not
  rewarded toward its weak majority: every sample of it gets the advantage ``-penalty``. GRPO centres the
  rewards of each group, so a constant negative reward would vanish; the penalty is therefore an advantage
  offset that ``grpo.train_grpo`` applies after TRL computed the advantages (``advantage_offsets``).
  Not covered: the paper's prompt-level weighting by consistency and its overconfidence penalty on single
  rollouts.
"""

from __future__ import annotations

from .base import Reward


class MajorityReward(Reward):
    """TTRL: agreement with the group's majority answer; prompts whose winner has under ``min_share`` of the
    votes are skipped (all rewards 0)."""

    name = "majority"

    def __init__(self, min_share: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= min_share <= 1.0:
            raise ValueError(f"majority reward: min_share must be in [0, 1], got {min_share}")
        self.min_share = min_share
        self.labels: dict[str, tuple[str | None, float]] = {}
        """Example id -> (label, its vote share) from a separate voting pool; the group votes otherwise."""

    def use_pool(self, labels: dict[str, tuple[str | None, float]]) -> None:
        """Label each listed prompt by a separate, larger voting pool's majority (answer, vote share)."""
        self.labels = dict(labels)

    def _score(self, task, example, answers, texts):
        from ...answers import majority

        if example.id in self.labels:
            winner, share = self.labels[example.id]
            self.counts["pool_labelled"] += 1
        else:
            winner, votes, _ = majority(answers, task.equivalent)
            share = votes / len(answers)
        if winner is None or share < self.min_share:
            self.counts["skipped"] += 1
            return [0.0] * len(answers)
        self.counts["voted"] += 1
        return [1.0 if a is not None and task.equivalent(a, winner) else 0.0 for a in answers]

    def stats(self):
        c = self.counts
        out = super().stats()
        out.update(voted=c["voted"], skipped=c["skipped"], min_share=self.min_share,
                   skipped_share=c["skipped"] / c["prompts"] if c["prompts"] else None)
        return out


class RestrainReward(Reward):
    """RESTRAIN-style: reward = the vote share of the sample's answer; a prompt whose top share is under
    ``min_share`` gets advantage ``-penalty`` on every sample instead."""

    name = "restrain"

    def __init__(self, min_share: float = 0.5, penalty: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= min_share <= 1.0:
            raise ValueError(f"restrain reward: min_share must be in [0, 1], got {min_share}")
        if penalty < 0:
            raise ValueError(f"restrain reward: penalty must be >= 0 (an advantage of -penalty), got "
                             f"{penalty}")
        self.min_share, self.penalty = min_share, penalty
        self.penalised: set[str] = set()  # ids penalised since the trainer last asked

    def _score(self, task, example, answers, texts):
        from ...answers import group_answers

        groups = group_answers(answers, task.equivalent)
        n = len(answers)
        top = max((len(g) for g in groups), default=0)
        if top / n < self.min_share:
            self.counts["penalised"] += 1
            self.penalised.add(example.id)
            return [0.0] * n
        self.counts["voted"] += 1
        out = [0.0] * n
        for g in groups:
            for i in g:
                out[i] = len(g) / n
        return out

    def advantage_offsets(self, ids) -> list[float | None]:
        """Per completion (ids in TRL's order): the advantage to impose (``-penalty``) or None (TRL's)."""
        out = [-self.penalty if i in self.penalised else None for i in ids]
        self.penalised = set()
        return out

    def stats(self):
        c = self.counts
        out = super().stats()
        out.update(voted=c["voted"], penalised=c["penalised"], min_share=self.min_share, penalty=self.penalty,
                   penalised_share=c["penalised"] / c["prompts"] if c["prompts"] else None)
        return out
