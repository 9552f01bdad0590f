"""The built-in model: a small Llama with a character tokenizer, pretrained here on the arithmetic
family. ``resolve_model("tiny")`` returns its cached directory, pretraining it on first use."""

from .config import PRESETS, TinyConfig
from .models import ensure_model, home, model_dir, resolve_model

__all__ = ["PRESETS", "TinyConfig", "ensure_model", "home", "model_dir", "resolve_model"]
