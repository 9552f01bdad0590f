"""Backends by model spec, as ``--model`` takes them (``selfimprove ls models`` lists them):

- ``scripted[:error_rate=0.3,seed=0,delay=0]``: a noisy calculator (no model): it evaluates the last
  arithmetic expression in the prompt and gets it wrong at ``error_rate``, deterministically per prompt,
  seed and sample. For fast demos and tests of the machinery, never for claims about models.
- ``openai:URL[,URL...]`` or ``openai:URL@MODEL``: an OpenAI-compatible server (vLLM, SGLang, llama.cpp, ...).
- ``vllm:PATH_OR_ID``: the in-process vLLM engine (GPU, ``[vllm]`` extra).
- ``tiny`` / ``tiny-verify`` / ``micro``: the built-in models (pretrained on first use); anything else: a local
  Hugging Face model directory or a hub id, through the ``hf`` backend.

Each is one ``register_model`` line; a factory takes the text after ``NAME:`` and the backend's keyword options.
"""

from __future__ import annotations

from ..registry import Option, build_backend, register_model
from ..specs import parse_spec
from .scripted import scripted_calculator

get_backend = build_backend


def _scripted(arg: str, **kwargs):
    """No model: a noisy calculator that speaks the arithmetic task's formats (for tests and trying things)."""
    from ..registry import build

    _, options = parse_spec(f"scripted:{arg}", "scripted model")
    return build(scripted_calculator, options, "scripted model")


def _openai(arg: str, **kwargs):
    """An OpenAI-compatible server: openai:URL[,URL...][@MODEL] (vLLM, SGLang, llama.cpp, ...)."""
    from .openai_compat import OpenAICompatBackend

    return OpenAICompatBackend.from_spec(f"openai:{arg}", **kwargs)


def _vllm(arg: str, **kwargs):
    """The in-process vLLM engine: vllm:PATH_OR_HUB_ID (GPU, the [vllm] extra)."""
    from .vllm_engine import VLLMBackend

    return VLLMBackend(arg, **kwargs)


def _hf(arg: str, **kwargs):
    """A local Hugging Face model directory or hub id (transformers; trainable)."""
    from .hf import HFBackend

    return HFBackend(arg, **kwargs)


def _builtin(name: str):
    def factory(arg: str, **kwargs):
        from ..tiny import resolve_model
        from .hf import HFBackend

        return HFBackend(resolve_model(name), **kwargs)

    return factory


register_model("scripted", _scripted, options=(
    Option("error_rate", float, 0.3, "Share of wrong answers, in [0, 1]."),
    Option("seed", int, 0, "Seed of the deterministic errors."),
    Option("delay", float, 0.0, "Seconds to sleep per completion (to test interruption)."),
))
register_model("openai", _openai, options=())
register_model("vllm", _vllm, options=())
register_model("hf", _hf, options=())
register_model("tiny", _builtin("tiny"), options=(), description=(
    "Built-in 0.5M-parameter Llama pretrained here on the arithmetic task (~80 s on first use); the demo's model."))
register_model("tiny-verify", _builtin("tiny-verify"), options=(), description=(
    "Built-in tiny model that also learned to verify (verify format 2; ~2 min on first use)."))
register_model("micro", _builtin("micro"), options=(), description=(
    "Built-in micro model (seconds to pretrain; for tests: it learns the format, little arithmetic)."))

__all__ = ["get_backend"]
