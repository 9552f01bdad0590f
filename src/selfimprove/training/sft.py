"""Supervised fine-tuning on prompt-completion rows through TRL's ``SFTTrainer`` (every gradient step).

Rows are ``{"prompt": str, "completion": str}``: a prompt-completion dataset, so TRL masks the prompt and the
loss falls on the completion (and the EOS TRL appends as the text of ``tokenizer.eos_token``) only. The same
call trains the built-in tiny model and any Hugging Face causal LM; ``lora=True`` wraps it with a PEFT LoRA
adapter and merges the adapter back before saving, so every saved round is a plain, loadable model dir.

Settings TRL 1.16 defaults differently from what a small CPU run wants, set here on purpose: gradient
checkpointing off (TRL turns it on; 5.x calls it ``activation_checkpointing``), fp32 on CPU (TRL defaults
``bf16=True``), no saving, no evaluation, no progress bars, dataloader workers 0.

Not covered: packing-aware loss checks, multi-GPU launch (run under ``accelerate launch`` for that), DPO
(``training/dpo.py``).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..records import Record
from .settings import SCHEDULERS, SFTSettings

__all__ = ["SCHEDULERS", "SFTResult", "SFTSettings", "load_policy", "save_policy", "train_sft"]


@dataclass(frozen=True)
class SFTResult(Record):
    """What one SFT call did."""

    rows: int
    """Rows trained on."""
    steps: int
    """Optimiser steps taken."""
    losses: tuple[float, ...] = ()
    """Training loss at each logged step, in order."""
    seconds: float = 0.0
    """Wall time of ``trainer.train()`` (data preparation and saving excluded)."""
    lora: bool = False
    """Whether a LoRA adapter was trained (and merged)."""

    @property
    def first_loss(self) -> float | None:
        return self.losses[0] if self.losses else None

    @property
    def last_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SFTResult:
        d = dict(d)
        d["losses"] = tuple(d.get("losses", ()))
        return cls(**d)


def load_policy(path: str | Path):
    """(model, tokenizer) from a saved HF model dir or hub id, in fp32 on CPU / the model's dtype on GPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path))
    return model, tokenizer


def planned_steps(settings: SFTSettings, n_rows: int) -> int:
    """Optimiser steps for ``n_rows``: ``epochs`` passes, capped by ``max_steps``. (Trainer's own
    ``max_steps`` *replaces* the epochs, so a small data set would be looped over many times.)"""
    per_epoch = max(1, math.ceil(n_rows / (settings.batch_size * settings.accumulation)))
    steps = max(1, math.ceil(settings.epochs * per_epoch))
    return steps if settings.max_steps == -1 else min(steps, settings.max_steps)


def sft_config(settings: SFTSettings, output_dir: str, n_rows: int):
    """The ``trl.SFTConfig`` for ``settings`` (field names checked against TRL 1.16's source)."""
    import torch
    from trl import SFTConfig

    bf16 = settings.precision == "bf16" or (
        settings.precision == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return SFTConfig(
        output_dir=output_dir, learning_rate=settings.lr, num_train_epochs=settings.epochs,
        max_steps=planned_steps(settings, n_rows), per_device_train_batch_size=settings.batch_size,
        lr_scheduler_type=settings.scheduler, warmup_steps=settings.warmup_steps,
        weight_decay=settings.weight_decay, seed=settings.seed, data_seed=settings.seed,
        max_length=settings.max_length, packing=settings.packing, completion_only_loss=True,
        activation_checkpointing=False, bf16=bf16, fp16=False,  # TRL defaults both to on
        logging_strategy="steps", logging_steps=settings.logging_steps, report_to="none",
        save_strategy="no", eval_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(), shuffle_dataset=False, **settings.trl_args,
    )


def train_sft(model, tokenizer, rows: Sequence[dict[str, str]], settings: SFTSettings,
              save_to: str | Path | None = None, chat: bool = True):
    """Fine-tune ``model`` on prompt-completion ``rows``; returns ``(trained_model, SFTResult)``.

    ``model`` is a ``PreTrainedModel`` or a path (then ``tokenizer`` may be None and is loaded from it). With
    ``save_to`` the trained model (LoRA merged) and the tokenizer are written there with ``save_pretrained``.
    Rows with an empty completion are refused: there would be nothing to learn from them. ``chat`` (the hf
    backend's option of the same name) False formats prompts as plain text instead of the chat template.
    """
    if isinstance(model, (str, Path)):
        model, loaded_tok = load_policy(model)
        tokenizer = tokenizer or loaded_tok
    from ..chat import model_text

    # the prompt as the hf backend sends it (chat template applied when the tokenizer has one)
    rows = [{"prompt": model_text(tokenizer, r["prompt"], chat), "completion": r["completion"]} for r in rows]
    if not rows:
        raise ValueError("train_sft needs at least one row; the caller should skip training on empty data")
    if any(not r["completion"] for r in rows):
        raise ValueError("train_sft: a row has an empty completion; filter it out before training")

    import datasets
    from transformers import PrinterCallback
    from trl import SFTTrainer

    datasets.disable_progress_bars()
    peft_config = lora_config(settings) if settings.lora else None
    with tempfile.TemporaryDirectory(prefix="selfimprove-sft-") as tmp:
        trainer = SFTTrainer(model=model, args=sft_config(settings, tmp, len(rows)),
                             train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer,
                             peft_config=peft_config)
        trainer.remove_callback(PrinterCallback)  # it prints every log dict; losses are kept in log_history
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        trained = trainer.model
        losses = tuple(float(h["loss"]) for h in trainer.state.log_history
                       if "loss" in h and math.isfinite(h["loss"]))
        steps = int(trainer.state.global_step)
    if settings.lora:
        trained = trained.merge_and_unload()
    drop_fused_head(trained)
    trained.eval()
    if save_to is not None:
        save_policy(trained, tokenizer, save_to)
    return trained, SFTResult(rows=len(rows), steps=steps, losses=losses, seconds=round(seconds, 3),
                              lora=settings.lora)


def save_policy(model, tokenizer, path: str | Path) -> None:
    """``save_pretrained`` model and tokenizer into ``path`` (created if missing)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))


def drop_fused_head(model) -> None:
    """Remove the fused-LM-head ``forward`` TRL 1.16 patches onto the model *instance* while training: the
    trained model then generates through its class's own forward, and a later SFT call patches a clean model
    (not a wrapper of a wrapper)."""
    patched = model.__dict__.get("forward")
    if patched is not None and getattr(patched, "__wrapped__", None) is not None:
        del model.__dict__["forward"]


def lora_config(settings):
    """PEFT LoRA on every linear layer, alpha = 2r (``settings`` has ``lora_r``: SFT and DPO settings)."""
    from peft import LoraConfig

    return LoraConfig(r=settings.lora_r, lora_alpha=2 * settings.lora_r, lora_dropout=0.0,
                      target_modules="all-linear", task_type="CAUSAL_LM")
