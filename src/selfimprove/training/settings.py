"""How one trainer call trains: the typed settings of SFT and DPO, each field declared once with its default.

``TrainerSettings`` holds what every TRL trainer shares (budget, schedule, LoRA, precision and ``trl_args``, a
pass-through for the TRL options the project does not model); ``SFTSettings`` and ``DPOSettings`` add their
learning rate and objective. A run config nests them as ``sft`` and ``dpo`` (``LoopConfig``); the defaults are
sized for the built-in tiny model on a 2-core CPU. For a real model lower ``lr`` (SFT ~1e-5 full, ~1e-4 LoRA;
DPO ~5e-7 to 1e-6 full, ~5e-6 LoRA) and raise ``max_length``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEDULERS = ("constant", "linear", "cosine", "constant_with_warmup")
"""Learning-rate schedules (transformers' names)."""
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm")
"""TRL 1.16's DPO loss types."""
MODELLED = {"learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
            "lr_scheduler_type", "warmup_steps", "weight_decay", "seed", "data_seed", "max_length", "packing",
            "beta", "loss_type", "loss_weights", "bf16", "fp16", "output_dir", "logging_steps"}
"""TRL config fields set from a modelled setting: ``trl_args`` may not set them (set the setting instead)."""


@dataclass(frozen=True)
class TrainerSettings:
    """What SFT and DPO calls share."""

    epochs: float = 2.0
    """Passes over a call's rows or pairs (fractions allowed); ``max_steps`` caps the steps they take."""
    batch_size: int = 16
    """Rows (or pairs) per optimiser step, per device."""
    max_steps: int = 40
    """Cap on optimiser steps per call (per round in a loop); -1 lets ``epochs`` decide alone."""
    max_length: int = 512
    """Tokens per prompt+completion; longer rows are truncated at the end."""
    scheduler: str = "constant"
    """Learning-rate schedule: constant, linear, cosine or constant_with_warmup."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    seed: int = 0
    """Seed of adapters and the data order in a direct call (a training loop sets run seed x 1000 + round)."""
    lora: bool = False
    """Train a LoRA adapter (PEFT) instead of all weights; it is merged before saving."""
    lora_r: int = 8
    """LoRA rank (alpha = 2r, every linear layer)."""
    logging_steps: int = 1
    """Record the training loss every this many steps."""
    precision: str = "auto"
    """'auto' (bf16 on a bf16-capable GPU, fp32 otherwise), 'fp32' or 'bf16'."""
    trl_args: dict[str, Any] = field(default_factory=dict)
    """Further TRL config options passed through unchanged, e.g. {gradient_accumulation_steps = 4}."""

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not self.epochs > 0:
            raise ValueError(f"{name}.epochs must be > 0, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"{name}.batch_size must be >= 1, got {self.batch_size}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"{name}.max_steps must be -1 (no cap) or >= 1, got {self.max_steps}")
        if self.max_length < 8:
            raise ValueError(f"{name}.max_length must be >= 8, got {self.max_length}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"{name}.scheduler must be one of {', '.join(SCHEDULERS)}, "
                             f"got {self.scheduler!r}")
        if self.warmup_steps < 0 or self.lora_r < 1 or self.logging_steps < 1:
            raise ValueError(f"{name}: warmup_steps must be >= 0, lora_r and logging_steps >= 1")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"{name}.precision must be auto, fp32 or bf16, got {self.precision!r}")
        if not isinstance(self.trl_args, dict):
            raise ValueError(f"{name}.trl_args must be a table of TRL options, got {self.trl_args!r}")  # noqa: TRY004
        if clash := sorted(MODELLED & set(self.trl_args)):
            raise ValueError(f"{name}.trl_args may not set {', '.join(clash)}: set the matching setting "
                             f"instead (lr, epochs, max_steps, batch_size, ...)")
        object.__setattr__(self, "trl_args", dict(self.trl_args))

    @property
    def accumulation(self) -> int:
        """Batches per optimiser step (``trl_args.gradient_accumulation_steps``, 1 by default)."""
        return int(self.trl_args.get("gradient_accumulation_steps", 1))

    def check_trl_args(self, config_cls) -> None:
        """Refuse ``trl_args`` keys that are not fields of ``config_cls`` (TRL's SFTConfig / DPOConfig)."""
        import dataclasses

        known = {f.name for f in dataclasses.fields(config_cls)}
        if unknown := sorted(set(self.trl_args) - known):
            raise ValueError(f"{type(self).__name__}.trl_args: {', '.join(unknown)} is not an option of "
                             f"TRL's {config_cls.__name__}")


@dataclass(frozen=True)
class SFTSettings(TrainerSettings):
    """How one SFT call trains (TRL SFTTrainer, loss on the completion only)."""

    lr: float = 3e-5
    """Peak learning rate. 3e-5 suits the built-in tiny model: one SFT call on the same self-generated round-1
    rows took dev accuracy from 72 % to 60-67.5 % at 3e-4, 75-81 % at 1e-4 and 78-82 % at 3e-5
    (docs/results/learning-rate.md); ~1e-5 (full) or ~1e-4 (LoRA) for real LMs."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    packing: bool = False
    """Pack rows into max_length blocks (TRL's best-fit packing); off keeps one row per sequence."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.lr > 0:
            raise ValueError(f"SFTSettings.lr must be > 0, got {self.lr}; try 3e-5 (tiny) or 1e-5 (real LM)")
        if self.weight_decay < 0:
            raise ValueError(f"SFTSettings.weight_decay must be >= 0, got {self.weight_decay}")


@dataclass(frozen=True)
class DPOSettings(TrainerSettings):
    """How one DPO call trains (TRL DPOTrainer with per-pair weights)."""

    lr: float = 1e-5
    """Peak learning rate. 1e-5 suits the built-in tiny model: one round of gold-labelled DPO or ScPO (+ SFT
    term) on 330 train problems moved dev accuracy from 72 % to 60-67 % / 53-65 % at 1e-4, 71-74 % / 69-72 %
    at 3e-5, 77-82 % / 77-78 % at 1e-5 and 76-80 % / 76-77 % at 3e-6 (two seeds;
    docs/results/preference-methods.md). ~5e-7 to 1e-6 full / ~5e-6 LoRA for real LMs."""
    beta: float = 0.1
    """DPO's β: how far the policy may move from the reference."""
    loss_type: tuple[str, ...] = ("sigmoid", "sft")
    """TRL loss types, summed with ``loss_weights``: ('sigmoid',) is plain DPO; ('sigmoid', 'sft') adds NLL on
    the chosen response (plain sigmoid DPO lowered the tiny model's accuracy while log π(chosen) fell)."""
    loss_weights: tuple[float, ...] | None = None
    """Weight of each loss type (None: 1 each)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "loss_type", _tuple(self.loss_type))
        if self.loss_weights is not None:
            object.__setattr__(self, "loss_weights", tuple(float(w) for w in _tuple(self.loss_weights)))
        if not self.lr > 0 or not self.beta > 0:
            raise ValueError(f"DPOSettings.lr and beta must be > 0, got lr={self.lr}, beta={self.beta}")
        bad = [t for t in self.loss_type if t not in LOSS_TYPES]
        if not self.loss_type or bad:
            raise ValueError(f"DPOSettings.loss_type must be one or more of {', '.join(LOSS_TYPES)}, "
                             f"got {bad}")
        if self.loss_weights is not None and len(self.loss_weights) != len(self.loss_type):
            raise ValueError(f"DPOSettings.loss_weights needs one weight per loss type "
                             f"({len(self.loss_type)}), got {len(self.loss_weights)}")


def _tuple(value) -> tuple:
    return (value,) if isinstance(value, (str, int, float)) else tuple(value)
