"""Backends by model spec, as ``--model`` takes them.

- ``scripted[:error_rate=0.3,seed=0,delay=0]``: a noisy calculator (no model): it evaluates the last
  arithmetic expression in the prompt and gets it wrong at ``error_rate``, deterministically per prompt,
  seed and sample. For fast demos and tests of the machinery, never for claims about models.
- ``openai:URL[,URL...][,chat=true]`` or ``openai:URL@MODEL``: an OpenAI-compatible server (vLLM, SGLang,
  llama.cpp, ...); ``chat=true`` sends messages to ``/v1/chat/completions`` (the server applies the template).
- ``vllm:PATH_OR_ID``: the in-process vLLM engine (GPU, ``[vllm]`` extra).
- ``tiny`` / ``tiny-verify`` / ``micro``: the built-in character model (pretrained on first use); ``smollm2``:
  the built-in real chat model (converted on first use); anything else: a local Hugging Face model directory or
  a hub id, through the ``hf`` backend. These take ``:key=value`` options of the hf backend, e.g.
  ``smollm2:chat=false`` (plain text instead of the chat template), ``dtype=bfloat16``, ``device=cuda``.
"""

from __future__ import annotations

import hashlib
import re
import time

from ..errors import UserError
from ..specs import parse_spec
from .scripted import ScriptedBackend

_EXPR = re.compile(r"\d+(?:\s*[-+*]\s*\d+)+")


def scripted_calculator(error_rate: float = 0.3, seed: int = 0, delay: float = 0.0) -> ScriptedBackend:
    """The ``scripted`` model: right answers with deterministic noise (see module docstring)."""
    if not 0 <= error_rate <= 1:
        raise UserError(f"scripted option error_rate must be in [0, 1], got {error_rate}")

    def reply(prompt: str, i: int):
        if delay:
            time.sleep(delay)
        exprs = _EXPR.findall(prompt)
        if not exprs:
            return ("I do not know.", -2.0)
        value = eval(exprs[-1], {"__builtins__": {}})  # digits and + - * only (the regex guarantees it)
        h = int(hashlib.sha256(f"{seed}|{prompt}|{i}".encode()).hexdigest(), 16)
        wrong = (h % 10_000) / 10_000 < error_rate
        if wrong:
            value += 1 + (h >> 20) % 9 if (h >> 16) % 2 else -(1 + (h >> 20) % 9)
        return (f"{value}", -1.5 if wrong else -0.2)

    return ScriptedBackend(rules=[(r"", reply)])


def get_backend(spec: str, **kwargs):
    """A backend from a ``--model`` spec (see module docstring)."""
    if spec == "scripted" or spec.startswith("scripted:"):
        _, options = parse_spec(spec, "scripted model")
        known = {"error_rate": float, "seed": int, "delay": float}
        if unknown := set(options) - set(known):
            raise UserError(f"unknown scripted option(s) {sorted(unknown)}; known: {sorted(known)}")
        try:
            return scripted_calculator(**{k: known[k](v) for k, v in options.items()})
        except ValueError as e:
            raise UserError(f"scripted model: {e}") from None
    if spec.startswith("openai:"):
        from .openai_compat import OpenAICompatBackend

        return OpenAICompatBackend.from_spec(spec, **kwargs)
    if spec.startswith("vllm:"):
        from .vllm_engine import VLLMBackend

        return VLLMBackend(spec[len("vllm:"):], **kwargs)
    from .hf import HFBackend

    path, options = _hf_options(spec)
    try:
        from ..tiny import resolve_model
    except ImportError:
        pass
    else:
        path = resolve_model(path)
    return HFBackend(path, **{**options, **kwargs})


_HF_OPTIONS = {"chat": bool, "dtype": str, "device": str, "max_batch_tokens": int}


def _hf_options(spec: str) -> tuple[str, dict]:
    """``'smollm2:chat=false'`` → ``('smollm2', {'chat': False})``; a spec whose tail is not hf options (a path
    with a colon) is all path."""
    from ..specs import _convert

    name, sep, rest = spec.partition(":")
    if not sep:
        return spec, {}
    pairs = [p.partition("=") for p in rest.split(",") if p]
    if not pairs or any(not eq or key.strip() not in _HF_OPTIONS for key, eq, _ in pairs):
        if all(eq for _, eq, _ in pairs) and pairs and "/" not in rest:
            raise UserError(f"unknown model option(s) in {spec!r}; known: {', '.join(_HF_OPTIONS)}",
                            field="model")
        return spec, {}
    return name, {k.strip(): _convert(v.strip(), _HF_OPTIONS[k.strip()], f"model option '{k.strip()}'")
                  for k, _, v in pairs}
