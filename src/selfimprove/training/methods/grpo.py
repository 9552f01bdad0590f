"""GRPO with a pluggable reward: the task's gold checker or the group's majority answer (label-free).

Group Relative Policy Optimization ("DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
Language Models", Shao et al. 2024, arXiv:2402.03300) through TRL's ``GRPOTrainer`` (``training/grpo.py``);
with ``--rl-reward majority`` the label of each prompt is the majority answer of its own group, as in "TTRL:
Test-Time Reinforcement Learning" (Zuo et al. 2025, arXiv:2504.16084). Each round trains round r-1's model
on the round's training prompts (sampling happens inside TRL; no separate generation phase samples). The
round's ``train.json`` (and so its metrics) holds the reward's counters and guards: unparseable/truncated
completions, skipped prompts, and for majority the reward accuracy against gold, the share of voted prompts
whose majority is wrong and the distinct answers per group (read from gold, reported, never used).

Whether the data selection reads gold depends on the reward (gold: yes; majority: no); ``train.json`` says
which (``rewards.reads_gold``). Not covered: a separate voting pool, self-judge and RESTRAIN rewards, SCoRe's
two-turn RL, KL-to-start and entropy guards, a collapse stop.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...records import Example, Trace
from ...strategies.base import make_trace
from ..method import Built, Method


@dataclass(frozen=True)
class GRPO(Method):
    """GRPO (TRL) on the round's prompts with the run's ``rl.reward`` (gold, majority, weighted sums)."""

    name = "grpo"
    paper = ("DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models, "
             "arXiv:2402.03300")
    objective = "grpo"

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        # GRPO samples inside TRL while it trains; the round records which prompts it trains on
        return [make_trace(e, self.name, [], initial_answer=None, final_answer=None) for e in examples]

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        from ..rewards import parse_reward

        reward = parse_reward(loop.cfg.rl.reward, loop.cfg.rl.min_share)
        return Built(stats={"prompts": len(examples), "reward": reward.name, "reads_gold": reward.reads_gold})

    @staticmethod
    def train(loop, r: int, model, tok, examples: list[Example], seed: int, save_to):
        """One GRPO call on ``examples``; returns (model, the train.json fields with the reward's stats)."""
        import dataclasses

        from ..grpo import train_grpo
        from ..rewards import as_trl, parse_reward

        cfg = loop.cfg.rl
        settings = dataclasses.replace(cfg, seed=seed)
        reward = parse_reward(cfg.reward, cfg.min_share)
        rows = [{"prompt": loop.task.prompt(e), "id": e.id} for e in examples]
        fn = as_trl(reward, loop.task, examples, max_tokens=cfg.max_completion_length)
        model, res = train_grpo(model, tok, rows, [fn], settings, save_to=save_to, chat=loop.chat)
        return model, {**res.to_dict(), "rewards_per_step": list(res.rewards), "rewards": reward.stats()}
