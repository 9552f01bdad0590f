"""GRPO through TRL's ``GRPOTrainer``: a causal LM trained on prompts with a list of reward callables.

Group Relative Policy Optimization ("DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
Language Models", Shao et al. 2024, arXiv:2402.03300): every prompt is sampled ``num_generations`` times, each
completion's reward is normalised within its group, and the policy gradient follows the advantage. The
algorithm is TRL's; this module only maps ``GRPOSettings`` onto ``trl.GRPOConfig`` (fields checked against
TRL 1.16's source) and keeps what a round needs (steps, losses, mean reward per step, wall time).

Rows are ``{"prompt": str, "id": str}``: the prompt as the hf backend sends it is built here
(``chat.model_text``), and every further column (``id``) reaches the reward callables as a keyword list, one
entry per completion. TRL calls a reward as ``f(prompts=, completions=, completion_ids=, id=, ...)`` with the
``num_generations`` completions of a prompt next to each other; it must return one float (or None) each.

Settings TRL 1.16 defaults differently from what a small CPU run wants, set here on purpose: activation
checkpointing off, fp32 on CPU, no saving, no evaluation, no progress bars, no vLLM.

Not covered: vLLM generation, LoRA (``trl_args`` cannot add it; train a full model), reward models.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import Record

__all__ = ["GRPOResult", "GRPOSettings", "train_grpo"]

MODELLED = {"learning_rate", "max_steps", "per_device_train_batch_size", "num_generations",
            "max_completion_length", "temperature", "beta", "seed", "data_seed", "output_dir", "bf16", "fp16"}
"""GRPOConfig fields set from a modelled setting (``trl_args`` may not set them)."""


@dataclass(frozen=True)
class GRPOSettings:
    """How one GRPO call trains (sized for the built-in tiny model on a 2-core CPU)."""

    reward: str = "gold"
    """Reward of ``--method grpo``: gold, majority or format, joined by '+' with optional weights
    (``majority+0.1*format``); gold reads the gold answers, majority (TTRL) does not."""
    min_share: float = 0.0
    """Majority reward: a prompt whose winning answer has under this share of its group's votes is skipped
    (all its rewards 0, counted)."""
    lr: float = 1e-4
    """Learning rate (a real model wants ~1e-6)."""
    max_steps: int = 8
    """Optimiser steps per call (per round in a loop)."""
    num_generations: int = 4
    """Completions sampled per prompt (the group whose rewards are normalised)."""
    batch_size: int = 8
    """Completions per optimiser step, per device (a multiple of ``num_generations``)."""
    max_completion_length: int = 64
    """Generation cap per completion; a completion that hits it counts as truncated (reward 0)."""
    temperature: float = 0.8
    """Sampling temperature of the group."""
    beta: float = 0.0
    """KL coefficient against the reference model (0: no reference model is loaded, TRL's default)."""
    seed: int = 0
    """Seed of sampling and data order in a direct call (a loop sets run seed x 1000 + round)."""
    precision: str = "auto"
    """'auto' (bf16 on a bf16-capable GPU, fp32 otherwise), 'fp32' or 'bf16'."""
    trl_args: dict[str, Any] = field(default_factory=dict)
    """Further GRPOConfig options passed through unchanged, e.g. {scale_rewards = "batch"}."""

    def __post_init__(self) -> None:
        from .rewards import parse_reward

        parse_reward(self.reward, self.min_share)  # raises, naming the known rewards
        if not self.lr > 0:
            raise ValueError(f"GRPOSettings.lr must be > 0, got {self.lr}")
        if self.max_steps < 1:
            raise ValueError(f"GRPOSettings.max_steps must be >= 1, got {self.max_steps}")
        if self.num_generations < 2:
            raise ValueError(f"GRPOSettings.num_generations must be >= 2 (a group needs a spread), got "
                             f"{self.num_generations}")
        if self.batch_size < 1 or self.batch_size % self.num_generations:
            raise ValueError(f"GRPOSettings.batch_size must be a multiple of num_generations "
                             f"({self.num_generations}), got {self.batch_size}")
        if self.max_completion_length < 1:
            raise ValueError(f"GRPOSettings.max_completion_length must be >= 1, got {self.max_completion_length}")
        if not self.temperature > 0:
            raise ValueError(f"GRPOSettings.temperature must be > 0, got {self.temperature}")
        if self.beta < 0:
            raise ValueError(f"GRPOSettings.beta must be >= 0, got {self.beta}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"GRPOSettings.precision must be auto, fp32 or bf16, got {self.precision!r}")
        clash = sorted(set(self.trl_args) & MODELLED)
        if clash:
            raise ValueError(f"GRPOSettings.trl_args may not set {', '.join(clash)}: set the setting instead")


@dataclass(frozen=True)
class GRPOResult(Record):
    """What one GRPO call did."""

    prompts: int
    """Prompts in the call's data set."""
    steps: int
    """Optimiser steps taken."""
    losses: tuple[float, ...] = ()
    """Training loss at each logged step."""
    rewards: tuple[float, ...] = ()
    """Mean reward of the step's completions, at each logged step."""
    seconds: float = 0.0
    """Wall time of ``trainer.train()`` (generation included)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GRPOResult:
        d = dict(d)
        d["losses"], d["rewards"] = tuple(d.get("losses", ())), tuple(d.get("rewards", ()))
        return cls(**d)


def grpo_config(settings: GRPOSettings, output_dir: str):
    """The ``trl.GRPOConfig`` for ``settings``."""
    import torch
    from trl import GRPOConfig

    bf16 = settings.precision == "bf16" or (
        settings.precision == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return GRPOConfig(
        output_dir=output_dir, learning_rate=settings.lr, max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size, num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length, temperature=settings.temperature,
        beta=settings.beta, seed=settings.seed, data_seed=settings.seed,
        activation_checkpointing=False, bf16=bf16, fp16=False, use_vllm=False,
        logging_strategy="steps", logging_steps=1, report_to="none", save_strategy="no", eval_strategy="no",
        disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=torch.cuda.is_available(),
        **settings.trl_args,
    )


def train_grpo(model, tokenizer, rows: Sequence[dict[str, str]], reward_funcs: Sequence[Callable],
               settings: GRPOSettings, save_to: str | Path | None = None, reward_weights=None,
               chat: bool = True):
    """GRPO on ``rows`` (``{"prompt", "id"}``) with ``reward_funcs``; returns ``(trained_model, GRPOResult)``.

    ``model`` is a ``PreTrainedModel`` or a path (then ``tokenizer`` may be None). ``reward_weights`` (one per
    reward) weights TRL's sum of rewards. With ``save_to`` the trained model and tokenizer are saved there.
    ``chat`` False: prompts as plain text, not through the chat template (the hf backend's option).
    """
    from .sft import drop_fused_head, load_policy, save_policy

    if isinstance(model, (str, Path)):
        model, loaded = load_policy(model)
        tokenizer = tokenizer or loaded
    if not rows:
        raise ValueError("train_grpo needs at least one prompt; the caller should skip training on empty data")
    if not reward_funcs:
        raise ValueError("train_grpo needs at least one reward callable")
    from ..chat import model_text

    rows = [{**r, "prompt": model_text(tokenizer, r["prompt"], chat)} for r in rows]
    import datasets
    from transformers import PrinterCallback
    from trl import GRPOTrainer

    datasets.disable_progress_bars()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with tempfile.TemporaryDirectory(prefix="selfimprove-grpo-") as tmp:
        args = grpo_config(settings, tmp)
        if reward_weights is not None:
            args.reward_weights = list(reward_weights)
        trainer = GRPOTrainer(model=model, reward_funcs=list(reward_funcs), args=args,
                              train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer)
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        history = trainer.state.log_history
        trained, steps = trainer.model, int(trainer.state.global_step)
    losses = tuple(float(h["loss"]) for h in history if "loss" in h and math.isfinite(h["loss"]))
    rewards = tuple(float(h["reward"]) for h in history if "reward" in h and math.isfinite(h["reward"]))
    drop_fused_head(trained)
    trained.eval()
    if save_to is not None:
        save_policy(trained, tokenizer, save_to)
    return trained, GRPOResult(prompts=len(rows), steps=steps, losses=losses, rewards=rewards,
                               seconds=round(seconds, 3))
