"""GRPO through TRL's ``GRPOTrainer``: a causal LM trained on prompts with a list of reward callables.

Group Relative Policy Optimization ("DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
Language Models", Shao et al. 2024, arXiv:2402.03300): every prompt is sampled ``num_generations`` times, each
completion's reward is normalised within its group, and the policy gradient follows the advantage. The
algorithm is TRL's; this module only maps ``GRPOSettings`` onto ``trl.GRPOConfig`` (fields checked against
TRL 1.16's source) and keeps what a round needs (steps, losses, mean reward per step, wall time, and TRL's
own per-step log of KL to the reference, policy entropy and completion lengths, read rather than recomputed).
One addition to TRL's trainer: a hook that may replace the advantages of some completions after TRL computed
them (``trainer_class``; the RESTRAIN-style penalty needs it). The KL reference is loaded from a directory the
caller names (the run's starting model, by default).

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
    beta: float = 0.04
    """KL coefficient against the reference model (DeepSeekMath's 0.04; 0: no reference model is loaded and
    TRL logs no KL, so the round's KL-to-start guard is None)."""
    reference: str = "start"
    """The KL reference: 'start' (the run's starting model: the KL guard is KL to the start) or 'round' (the
    model the round starts from, as in DeepSeekMath's iterative GRPO)."""
    stop_entropy: float = 0.0
    """Collapse stop: the run ends (reason recorded) when a round's mean policy entropy per token (TRL's log)
    falls under this (0: never)."""
    seed: int = 0
    """Seed of sampling and data order in a direct call (a loop sets run seed x 1000 + round)."""
    precision: str = "auto"
    """'auto' (bf16 on a bf16-capable GPU, fp32 otherwise), 'fp32' or 'bf16'."""
    trl_args: dict[str, Any] = field(default_factory=dict)
    """Further GRPOConfig options passed through unchanged, e.g. {scale_rewards = "batch"}."""

    def __post_init__(self) -> None:
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
            raise ValueError(f"GRPOSettings.max_completion_length must be >= 1, got "
                             f"{self.max_completion_length}")
        if not self.temperature > 0:
            raise ValueError(f"GRPOSettings.temperature must be > 0, got {self.temperature}")
        if self.beta < 0:
            raise ValueError(f"GRPOSettings.beta must be >= 0, got {self.beta}")
        if self.reference not in ("start", "round"):
            raise ValueError(f"GRPOSettings.reference must be 'start' or 'round', got {self.reference!r}")
        if self.stop_entropy < 0:
            raise ValueError(f"GRPOSettings.stop_entropy must be >= 0 (0: never stop), got "
                             f"{self.stop_entropy}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"GRPOSettings.precision must be auto, fp32 or bf16, got {self.precision!r}")
        clash = sorted(set(self.trl_args) & MODELLED)
        if clash:
            raise ValueError(f"GRPOSettings.trl_args may not set {', '.join(clash)}: set the setting instead")


LOGGED = {"kl": "kl", "entropy": "entropy", "mean_length": "completions/mean_length",
          "clipped_ratio": "completions/clipped_ratio", "zero_std_share": "frac_reward_zero_std",
          "reward_std": "reward_std"}
"""What a round keeps of TRL's per-step log (our name: TRL's key); ``kl`` only when ``beta`` > 0."""


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
    logs: dict[str, list[float]] = field(default_factory=dict)
    """TRL's per-step values of ``LOGGED`` (KL to the reference, policy entropy, completion length, ...)."""

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


def trainer_class():
    """TRL's ``GRPOTrainer`` with one addition: after TRL computed a batch's advantages, ``advantage_hook``
    (ids of the batch's completions, in order -> per completion an advantage to impose, or None) may replace
    some (RESTRAIN's penalty on low-agreement prompts, which a reward cannot express: GRPO centres each
    group's rewards)."""
    from trl import GRPOTrainer

    class Trainer(GRPOTrainer):
        advantage_hook = None

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            if self.advantage_hook is not None:
                adv = out["advantages"]
                for i, x in enumerate(self.advantage_hook([row["id"] for row in inputs])):
                    if x is not None:
                        adv[i] = x
            return out

    return Trainer


def train_grpo(model, tokenizer, rows: Sequence[dict[str, str]], reward_funcs: Sequence[Callable],
               settings: GRPOSettings, save_to: str | Path | None = None, reward_weights=None,
               reference: str | Path | None = None, advantage_hook: Callable | None = None,
               chat: bool = True):
    """GRPO on ``rows`` (``{"prompt", "id"}``) with ``reward_funcs``; returns ``(trained_model, GRPOResult)``.

    ``model`` is a ``PreTrainedModel`` or a path (then ``tokenizer`` may be None). ``reward_weights`` (one per
    reward) weights TRL's sum of rewards. ``reference``: the model directory TRL loads as the KL reference
    when ``beta`` > 0 (default: the one the policy's config names). ``advantage_hook``: see
    ``trainer_class``. With ``save_to`` the trained model and tokenizer are saved there. ``chat`` False:
    prompts as plain text, not through the chat template (the hf backend's option).
    """
    from .sft import drop_fused_head, load_policy, save_policy

    if isinstance(model, (str, Path)):
        model, loaded = load_policy(model)
        tokenizer = tokenizer or loaded
    if not rows:
        raise ValueError("train_grpo needs at least one prompt; the caller should skip training on empty "
                         "data")
    if not reward_funcs:
        raise ValueError("train_grpo needs at least one reward callable")
    from ..chat import model_text

    rows = [{**r, "prompt": model_text(tokenizer, r["prompt"], chat)} for r in rows]
    import datasets
    from transformers import PrinterCallback

    datasets.disable_progress_bars()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with tempfile.TemporaryDirectory(prefix="selfimprove-grpo-") as tmp:
        args = grpo_config(settings, tmp)
        if reward_weights is not None:
            args.reward_weights = list(reward_weights)
        # TRL loads the KL reference from the path the policy's config names: point it at ``reference``
        named = model.config._name_or_path
        if reference is not None:
            model.config._name_or_path = str(reference)
        try:
            trainer = trainer_class()(model=model, reward_funcs=list(reward_funcs), args=args,
                                      train_dataset=datasets.Dataset.from_list(rows),
                                      processing_class=tokenizer)
        finally:
            model.config._name_or_path = named
        trainer.advantage_hook = advantage_hook
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        history = trainer.state.log_history
        trained, steps = trainer.model, int(trainer.state.global_step)
    losses = tuple(float(h["loss"]) for h in history if "loss" in h and math.isfinite(h["loss"]))
    rewards = tuple(float(h["reward"]) for h in history if "reward" in h and math.isfinite(h["reward"]))
    logs = {ours: [float(h[key]) for h in history if key in h and math.isfinite(h[key])]
            for ours, key in LOGGED.items()}
    drop_fused_head(trained)
    trained.eval()
    if save_to is not None:
        save_policy(trained, tokenizer, save_to)
    return trained, GRPOResult(prompts=len(rows), steps=steps, losses=losses, rewards=rewards,
                               seconds=round(seconds, 3), logs={k: v for k, v in logs.items() if v})
