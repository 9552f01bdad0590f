"""Built-in real models, converted from files that pip installs (no model hub): ``smollm2``; and the training
defaults that differ between the built-in character models and real models.

The character-level model trained here, ``tiny``, lives in ``selfimprove.tiny``; ``tiny.models.resolve_model``
resolves every built-in name, these included.
"""

from __future__ import annotations

import json
from pathlib import Path

BUILTIN = ("smollm2",)

REAL_MODEL_TRAINING = {"lr": 1e-4, "dpo_lr": 5e-6, "max_tokens": 256, "batch_size": 8, "max_steps": 16,
                       "max_length": 768}
"""``train`` defaults for a real model with LoRA (a recipe or a flag still wins). The run config's own
defaults are sized for the built-in character model (lr 3e-5 full fine-tuning, 128 new tokens, batch 16): a
real chat model's chain-of-thought answer needs ~150-250 tokens, LoRA wants a higher learning rate (~1e-4 SFT,
~5e-6 DPO; the LoRA paper's range, Hu et al., arXiv:2106.09685), and a CPU step costs tens of seconds, so
batches are smaller and steps capped lower."""
REAL_MODEL_FULL = {**REAL_MODEL_TRAINING, "lr": 1e-5, "dpo_lr": 5e-7}
"""The same without LoRA: full fine-tuning of a pretrained model wants ~10x lower rates."""


def is_character_model(path: str | Path) -> bool:
    """True for the built-in character-level models, by name or directory (and rounds trained from them): a
    vocabulary of a few hundred symbols, read from ``config.json`` (no weights loaded); False for ``smollm2``
    and when it cannot be read."""
    from ..tiny.config import PRESETS

    if str(path) in PRESETS and not Path(path).exists():
        return True
    try:
        config = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    vocab = config.get("vocab_size") or config.get("text_config", {}).get("vocab_size") or 0
    return 0 < int(vocab) < 1000


def training_defaults(model_path: str | Path, lora: bool) -> dict:
    """Flat ``train`` settings for ``model_path``: nothing for a character model (the config's defaults fit
    it), ``REAL_MODEL_TRAINING`` (LoRA) or ``REAL_MODEL_FULL`` for any other model."""
    if is_character_model(model_path):
        return {}
    return dict(REAL_MODEL_TRAINING if lora else REAL_MODEL_FULL)
