"""The in-process vLLM engine (extra ``[vllm]``, a GPU): ``vllm.LLM`` with tensor parallelism and prefix
caching.

Named ``vllm_engine`` so that it never shadows the ``vllm`` package, which is imported only when a backend is
built. ``SamplingParams`` already uses vLLM's names, so the mapping is one to one: ``n``, ``temperature``,
``top_p``, ``top_k``, ``max_tokens``, ``stop``, ``seed``, and ``logprobs`` as ``logprobs=0`` (the sampled
token's log-probability only). Outputs become ``Completion`` records: text (vLLM leaves the stop string out),
the sampled tokens' log-probabilities, ``finish_reason`` 'stop' / 'length' ('abort' and anything else:
'error'). ``logprobs_mode`` (vLLM >= 0.10.2) says what those log-probabilities are: 'raw_logprobs' (the
default here, recorded as 'raw'), or 'processed_logprobs' (after temperature / top-k / top-p, 'processed').

``loglikelihood`` scores continuations with ``prompt_logprobs``: the prompt and continuation are tokenized
separately and concatenated, as lm-evaluation-harness does. Failure is data: a batch the engine rejects is
retried prompt by prompt, and a prompt it still rejects (too long for the context, say) gets error
completions.

Not covered: multi-node serving (use Ray Data, ``scripts/ray_vllm_generate.py``), LoRA adapters, beam search.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import chat
from ..errors import UserError
from ..records import Completion, SamplingParams
from .base import Capabilities

LOGPROBS_SOURCE = {"raw_logprobs": "raw", "raw_logits": None, "processed_logprobs": "processed",
                   "processed_logits": None}
"""What each vLLM ``logprobs_mode`` makes of ``Completion.logprobs_source`` (logits are not
log-probabilities)."""


@dataclass(frozen=True)
class VLLMConfig:
    """How to build the vLLM engine."""

    model: str
    """A local model directory or a hub id (hub ids need network)."""
    tensor_parallel_size: int = 1
    """GPUs the model is split over (tensor parallelism)."""
    enable_prefix_caching: bool = True
    """Reuse the KV cache of shared prompt prefixes (few-shot headers, n samples of one prompt)."""
    dtype: str = "auto"
    """Weight dtype: auto, float32, bfloat16, float16."""
    gpu_memory_utilization: float = 0.9
    """Fraction of each GPU's memory the engine may take."""
    max_model_len: int | None = None
    """Context length; None takes the model's."""
    seed: int = 0
    """Engine seed (requests with their own seed use that)."""
    logprobs_mode: str | None = "raw_logprobs"
    """vLLM's logprobs_mode; None leaves the installed vLLM's default (then logprobs_source is unknown)."""
    chat: bool = True
    """Send prompts through the tokenizer's chat template when it has one (``selfimprove.chat``)."""
    trust_remote_code: bool = False
    """Allow model code from the hub."""
    enforce_eager: bool = False
    """Skip CUDA graph capture (faster start, slower decoding)."""

    def __post_init__(self) -> None:
        if not self.model:
            raise UserError("give a model directory or hub id", field="model")
        if self.tensor_parallel_size < 1:
            raise UserError(f"tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}",
                            field="tensor_parallel_size")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise UserError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}",
                            field="gpu_memory_utilization")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise UserError(f"dtype must be auto, float32, bfloat16 or float16, got {self.dtype!r}",
                            field="dtype")
        if self.logprobs_mode is not None and self.logprobs_mode not in LOGPROBS_SOURCE:
            raise UserError(f"logprobs_mode must be one of {sorted(LOGPROBS_SOURCE)} or None, got "
                            f"{self.logprobs_mode!r}", field="logprobs_mode")


def sampling_kwargs(params: SamplingParams) -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments for ``params`` (same names, same meanings)."""
    return {"n": params.n, "temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k,
            "max_tokens": params.max_tokens, "stop": list(params.stop), "seed": params.seed,
            "logprobs": 0 if params.logprobs else None}


def to_completion(output: Any, prompt_tokens: int, logprobs_source: str | None) -> Completion:
    """One vLLM ``CompletionOutput`` as a ``Completion``."""
    lps = pieces = None
    if output.logprobs is not None:
        lps = tuple(float(step[tok].logprob) for tok, step in zip(output.token_ids, output.logprobs))
        pieces = [getattr(step[tok], "decoded_token", None)
                  for tok, step in zip(output.token_ids, output.logprobs)]
        pieces = tuple(pieces) if all(isinstance(p, str) for p in pieces) else None
    reason = output.finish_reason
    finish = reason if reason in ("stop", "length") else "error"
    return Completion(text=output.text, token_logprobs=lps, tokens=pieces, finish_reason=finish,
                      prompt_tokens=prompt_tokens,
                      completion_tokens=len(output.token_ids),
                      logprobs_source=logprobs_source if lps is not None else None,
                      error=None if finish != "error" else f"vllm finish_reason={reason!r}")


class VLLMBackend:
    """Batch generation on local GPUs through ``vllm.LLM``."""

    name = "vllm"

    def __init__(self, model: str, **options: Any) -> None:
        self.config = VLLMConfig(model=model, **options)
        try:
            import vllm
        except ImportError as e:
            raise UserError(f"the vllm backend needs vLLM and a GPU: pip install 'selfimprove[vllm]' ({e})",
                            field="model") from None
        c = self.config
        engine_args = {k: v for k, v in asdict(c).items() if k not in ("chat", "logprobs_mode")}
        if c.logprobs_mode is not None:
            engine_args["logprobs_mode"] = c.logprobs_mode
        self._vllm = vllm
        self.llm = vllm.LLM(**engine_args)
        self.tokenizer = self.llm.get_tokenizer()
        self.logprobs_source = LOGPROBS_SOURCE.get(c.logprobs_mode) if c.logprobs_mode else None
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.capabilities = Capabilities(seed=True, logprobs=True, loglikelihood=True,
                                         chat_template=c.chat and has_template)

    def __repr__(self) -> str:
        return f"VLLMBackend({self.config.model!r}, tp={self.config.tensor_parallel_size})"

    def fingerprint(self) -> str:
        """Model id, weights' names and sizes and config.json when local, and the options that change
        outputs."""
        h = hashlib.sha256(json.dumps([self.config.model, self.config.dtype, self.config.chat,
                                       self.config.max_model_len]).encode())
        path = Path(self.config.model)
        if path.is_dir():
            for f in sorted(path.iterdir()):
                if f.suffix in (".safetensors", ".bin", ".json", ".model"):
                    h.update(f"{f.name}:{f.stat().st_size}".encode())
                    if f.name == "config.json":
                        h.update(f.read_bytes())
        return "vllm-" + h.hexdigest()[:16]

    def _prompt(self, prompt: str) -> str:
        if not self.capabilities.chat_template:
            return chat.plain(prompt)
        return chat.render_with_template(self.tokenizer, prompt)

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        """One list of ``params.n`` completions per prompt; a prompt the engine rejects gets error
        completions."""
        sp = self._vllm.SamplingParams(**sampling_kwargs(params))
        texts = [self._prompt(p) for p in prompts]
        try:
            outputs = self.llm.generate(texts, sp, use_tqdm=False)
        except (ValueError, RuntimeError) as batch_error:  # isolate the prompt(s) the engine refuses
            if len(texts) == 1:
                return [[Completion(text="", finish_reason="error", error=f"vllm: {batch_error}"[:300])
                         for _ in range(params.n)]]
            return [row for p in prompts for row in self.generate([p], params)]
        return [[to_completion(o, len(out.prompt_token_ids or ()), self.logprobs_source) for o in out.outputs]
                for out in outputs]

    def loglikelihood(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Sum of log P(continuation tokens | prompt), from ``prompt_logprobs``."""
        pairs = list(zip(prompts, continuations, strict=True))
        items, spans = [], []
        for prompt, cont in pairs:
            ctx = self.tokenizer(self._prompt(prompt))["input_ids"]
            tail = self.tokenizer(cont, add_special_tokens=False)["input_ids"]
            items.append({"prompt_token_ids": list(ctx) + list(tail)})
            spans.append((len(ctx), len(ctx) + len(tail)))
        sp = self._vllm.SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)
        outputs = self.llm.generate(items, sp, use_tqdm=False)
        scores = []
        for out, item, (lo, hi) in zip(outputs, items, spans):
            ids, plp = item["prompt_token_ids"], out.prompt_logprobs
            scores.append(float(sum(plp[i][ids[i]].logprob for i in range(lo, hi))))
        return scores
