"""``LoopConfig``: every setting of a self-training run, typed, validated and JSON round-trippable.

Defaults are sized for the built-in tiny model on a 2-core CPU (a round in well under a minute); for a real
model raise ``max_tokens``, lower ``lr`` (1e-5 full, 1e-4 with LoRA) and set the limits to the data size.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .methods import METHODS
from .sft import SCHEDULERS


@dataclass(frozen=True)
class LoopConfig:
    """One self-training run: method, sampling, selection, SFT budget, evaluation and stopping."""

    method: str = "lmsi"
    """star | rest-em | lmsi | easy-to-hard | no-filter."""
    rounds: int = 2
    """Rounds of generate -> select -> train -> evaluate after round 0 (the starting model)."""
    k: int = 8
    """Samples per training example (star, rest-em, lmsi, easy-to-hard)."""
    temperature: float = 0.8
    """Sampling temperature for the k samples."""
    top_p: float = 1.0
    """Nucleus mass for the k samples."""
    max_tokens: int = 128
    """Generation cap per completion; truncated completions are never trained on."""
    threshold: float = 0.5
    """Minimum majority vote share (votes / k, unparseable samples included) to accept a pseudo-label."""
    max_per_example: int | None = 4
    """Cap on distinct kept completions per example (None: no cap)."""
    rationalize: bool = True
    """STaR: rationalise examples no sample solved (gold answer as a hint; trained without the hint)."""
    rationalize_k: int = 1
    """STaR: completions per hinted prompt."""
    rationalize_temperature: float = 0.0
    """STaR: temperature of the hinted completions (0 = greedy)."""
    target_suffix: str = ""
    """Text appended to every training target before TRL's EOS (e.g. a stop string your format needs)."""
    train_split: str = "train"
    """Split whose examples are self-labelled (star, rest-em, lmsi, no-filter)."""
    train_limit: int | None = 128
    """Examples of the train split used per round (None: all)."""
    rotate: bool = True
    """Use a fresh slice of the train split each round (round r takes examples [r-1 .. r) x train_limit,
    wrapping around) instead of the same examples every round."""
    dev_split: str = "dev"
    """Split whose greedy accuracy drives the patience rule."""
    eval_splits: tuple[str, ...] = ()
    """Further (harder) splits evaluated every round."""
    eval_limit: int | None = 100
    """Examples per evaluated split (None: all)."""
    difficulty_splits: tuple[str, ...] = ()
    """easy-to-hard: split names in increasing difficulty, the first one step beyond the pretraining range."""
    replay: float = 1.0
    """easy-to-hard: replayed earlier rows per new row (0 disables replay)."""
    replay_gold: bool = True
    """easy-to-hard: the replay pool starts with gold in-range solutions (``task.solution``) where the task
    has them — in range only, so no gold beyond the pretraining range is used."""
    length_filter: bool = True
    """easy-to-hard: drop truncated completions and, where the task can judge it, implausible lengths."""
    lr: float = 3e-5
    """Peak learning rate. 3e-5 suits the tiny model: one SFT call on the same self-generated round-1 rows
    (500 train problems, fresh Adam state) took dev accuracy from 72 % to 60-67.5 % at 3e-4 (40 steps),
    75-81 % at 1e-4 (40 steps) and 78-82 % at 3e-5 (80 steps) across lmsi, no-filter and star rows (README,
    "Learning rate"); ~1e-5 (full) or ~1e-4 (LoRA) for real LMs."""
    epochs: float = 2.0
    """Passes over a round's rows (max_steps caps them)."""
    batch_size: int = 16
    """Rows per optimiser step."""
    max_steps: int = 40
    """Cap on optimiser steps per round (-1: epochs decide)."""
    max_length: int = 512
    """Tokens per training row."""
    scheduler: str = "constant"
    """Learning-rate schedule (constant, linear, cosine, constant_with_warmup)."""
    lora: bool = False
    """Train LoRA adapters (PEFT), merged into each saved round."""
    lora_r: int = 8
    """LoRA rank."""
    seed: int = 0
    """Seed for sampling, data order and subsets."""
    patience: int | None = 2
    """Stop after this many rounds without a dev-accuracy gain over the best so far (None: never)."""
    min_delta: float = 0.0
    """A gain must exceed this to count as improvement."""
    device: str = "auto"
    """Generation device for the hf backend: auto (cuda when available), cpu, cuda, ..."""

    def __post_init__(self) -> None:
        _check(self.method in METHODS, "method", self.method, f"one of {', '.join(METHODS)}")
        _check(self.rounds >= 1, "rounds", self.rounds, ">= 1")
        _check(self.k >= 1, "k", self.k, ">= 1 (the number of samples per example)")
        _check(self.temperature > 0, "temperature", self.temperature, "> 0 (sampling needs it)")
        _check(0 < self.top_p <= 1, "top_p", self.top_p, "in (0, 1]")
        _check(self.max_tokens >= 1, "max_tokens", self.max_tokens, ">= 1")
        _check(0 <= self.threshold <= 1, "threshold", self.threshold, "in [0, 1]")
        _check(self.max_per_example is None or self.max_per_example >= 1, "max_per_example",
               self.max_per_example, ">= 1 or None")
        _check(self.rationalize_k >= 1 and self.rationalize_temperature >= 0, "rationalize_k",
               self.rationalize_k, ">= 1 (and rationalize_temperature >= 0)")
        for name in ("train_limit", "eval_limit"):
            value = getattr(self, name)
            _check(value is None or value >= 1, name, value, ">= 1 or None")
        _check(self.replay >= 0, "replay", self.replay, ">= 0")
        if self.method == "easy-to-hard":
            _check(len(self.difficulty_splits) >= 1, "difficulty_splits", self.difficulty_splits,
                   "at least one split name beyond the pretraining range (e.g. terms=6)")
        _check(self.lr > 0, "lr", self.lr, "> 0 (3e-5 for the tiny model)")
        _check(self.epochs > 0, "epochs", self.epochs, "> 0")
        _check(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")
        _check(self.max_steps == -1 or self.max_steps >= 1, "max_steps", self.max_steps, "-1 or >= 1")
        _check(self.scheduler in SCHEDULERS, "scheduler", self.scheduler, f"one of {SCHEDULERS}")
        _check(self.patience is None or self.patience >= 1, "patience", self.patience, ">= 1 or None")
        _check(math.isfinite(self.min_delta), "min_delta", self.min_delta, "a finite number")
        for name in ("eval_splits", "difficulty_splits"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoopConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def replace(self, **changes: Any) -> LoopConfig:
        return dataclasses.replace(self, **changes)


def _check(ok: bool, name: str, value: Any, want: str) -> None:
    if not ok:
        raise ValueError(f"LoopConfig.{name} must be {want}, got {value!r}")
