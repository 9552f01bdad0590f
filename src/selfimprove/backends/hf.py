"""The ``hf`` backend: a local Hugging Face causal LM, decoded by a torch loop written here.

What it does:
- Loads any causal-LM directory (or hub id when online) with ``AutoModelForCausalLM`` / ``AutoTokenizer``,
  or wraps an already-loaded model and tokenizer (``HFBackend.from_model``) so training code can generate
  with in-memory weights.
- Prefills each *distinct* prompt once and copies its KV cache to its ``n`` samples
  (``DynamicCache.batch_select_indices``); ``model.generate(num_return_sequences=n)`` prefills every copy.
  A token prefix shared by every prompt of a batch (the chat template's system prompt, few-shot examples) is
  prefilled once, and prompts of similar length together, so few pad positions are computed (``prefill``);
  a large vocabulary's output layer runs in slices while decoding (``output_layer``: bit-identical logits).
- Batch-size invariance: sample ``i`` of a prompt draws its uniforms from its own ``torch.Generator`` seeded
  by a stable hash of (seed, prompt text, i) and picks tokens by inverse CDF, so the same seed gives the same
  completions whatever the batch size, chunking or prompt order. (Padded batches change float rounding in
  the last bits; that flips a token only when a uniform lands within ~1e-6 of a CDF boundary.)
- ``token_logprobs`` are **raw**: ``log_softmax`` of the unmodified logits, before temperature, top-k and
  top-p. They cover exactly the tokens of the returned text: EOS and tokens cut off by a stop string are left
  out, and ``completion_tokens == len(token_logprobs)``, so ``sum(token_logprobs)`` equals
  ``loglikelihood(prompt, text)`` when the text re-encodes to the same tokens.
- Chat: when the tokenizer has a chat template (and ``chat`` is not turned off), a prompt's messages
  (``selfimprove.chat``: a plain prompt is one user message) go through the template, and the template's text
  is encoded without extra special tokens; otherwise ``chat.plain(prompt)`` is encoded with the tokenizer's
  default special tokens (BOS where its config adds one). ``generate``, ``loglikelihood`` and
  ``render_prompt`` (the exact text the model receives) share this encoding.

What it does not cover: beam search, repetition penalties and other logits processors, continuous batching,
multi-GPU or tensor parallelism (use the vllm or openai_compat backends), prompt truncation (a prompt that
fills the context gives a completion with finish_reason 'error').
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import chat
from ..errors import UserError
from ..records import Completion, SamplingParams
from .base import Capabilities, apply_stop
from .batching import Piece, left_pad, plan
from .output_layer import sliced_output_layer
from .prefill import prefill
from .sampling import choose as _choose
from .sampling import uniforms as _uniforms

DTYPES = ("float32", "bfloat16", "float16", "auto")


@dataclass(frozen=True)
class HFConfig:
    """How to load and batch a Hugging Face causal LM."""

    model: str
    """A local model directory or a hub id (hub ids need network)."""
    device: str = "cpu"
    """Torch device: 'cpu', 'cuda', 'cuda:1', 'mps'."""
    dtype: str = "float32"
    """Weight dtype: one of float32, bfloat16, float16, auto."""
    chat: bool = True
    """Send prompts through the tokenizer's chat template when it has one; False sends plain text."""
    max_batch_tokens: int = 32768
    """Upper bound on rows x (padded prompt + new tokens) held in one decoding batch (KV-cache memory)."""

    def __post_init__(self) -> None:
        if not self.model:
            raise UserError("give a model directory or hub id", field="model")
        if self.dtype not in DTYPES:
            raise UserError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}", field="dtype")
        if self.max_batch_tokens < 1:
            raise UserError(f"max_batch_tokens must be >= 1, got {self.max_batch_tokens}",
                            field="max_batch_tokens")


class HFBackend:
    """A trainable policy: generation, raw log-probabilities and log-likelihoods from local weights.

    ``capabilities.chat_template`` is True when the chat template is applied: ``chat`` is on and the tokenizer
    has one.
    """

    def __init__(self, model: str, device: str = "cpu", dtype: str = "float32", chat: bool = True,
                 max_batch_tokens: int = 32768) -> None:
        self.config = HFConfig(model=model, device=device, dtype=dtype, chat=chat,
                               max_batch_tokens=max_batch_tokens)
        hf_model, tokenizer = _load(self.config)
        self._setup(hf_model, tokenizer, f"hf:{model}")

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, name: str = "in-memory", chat: bool = True,
                   max_batch_tokens: int = 32768) -> HFBackend:
        """Wrap an already-loaded model and tokenizer (weights stay shared with the caller)."""
        self = cls.__new__(cls)
        dtype = str(model.dtype).removeprefix("torch.")
        self.config = HFConfig(model=name, device=str(model.device),
                               dtype=dtype if dtype in DTYPES else "auto",
                               chat=chat, max_batch_tokens=max_batch_tokens)
        self._setup(model, tokenizer, f"hf:{name}")
        self._weights = (None,)  # in memory: not necessarily the weights on disk under ``name``
        return self

    def _setup(self, model: Any, tokenizer: Any, name: str) -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self._use_chat = self.config.chat and bool(getattr(tokenizer, "chat_template", None))
        self.capabilities = Capabilities(seed=True, logprobs=True, loglikelihood=True,
                                         chat_template=self._use_chat, trainable=True)
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        self._pieces: dict[int, str] = {}
        """Each token id's text, decoded alone (``_token_texts``)."""
        self._stop_ends: dict[tuple[str, ...], frozenset[int]] = {}
        """Per stop tuple, the token ids that may complete one of its strings (``_may_end_stop``)."""
        self._eos = set(eos) | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())
        pad = tokenizer.pad_token_id
        self._pad = pad if pad is not None else min(self._eos, default=0)
        self._context = getattr(model.config.get_text_config(), "max_position_embeddings", None)
        self._weights: tuple[str | None] | None = None  # (sha256,) once computed
        self._fingerprint: tuple[list, str] | None = None  # (each parameter and its version, the value)

    @property
    def weights_sha256(self) -> str | None:
        """The sha256 of the weights file this backend loaded (``files.weights_sha256``; runs record it),
        computed on first use and kept; None for an in-memory model (``from_model``) or a hub id."""
        if self._weights is None:
            from ..files import weights_sha256

            self._weights = (weights_sha256(self.config.model),)
        return self._weights[0]

    def fingerprint(self) -> str:
        """Hash of config, tokenizer, chat mode and weight contents (L2 norm + strided sample per tensor).

        Computed once per state of the weights (the cache asks on every call; the norms read every weight):
        kept while each parameter is the same tensor (weak reference) at the same version, storage, dtype and
        device. An optimizer step or ``copy_`` bumps the version; a cast or ``p.data = x`` moves the storage.
        Not seen: in-place writes through ``p.data`` (PEFT's default LoRA merge), which bypass the version:
        build a new backend after those (the training loop does). Where the model was loaded from is not
        part of it (``_name_or_path``): the same model in another folder or home shares the completion cache.
        """
        params = [(p, (p._version, p.data_ptr(), p.dtype, p.device)) for p in self.model.parameters()]
        kept = self._fingerprint
        if kept is None or len(kept[0]) != len(params) or any(
                ref() is not p or was != now for (ref, was), (p, now) in zip(kept[0], params)):
            state = [(weakref.ref(p), now) for p, now in params]
            kept = self._fingerprint = (state, self._weights_fingerprint())
        return kept[1]

    def _weights_fingerprint(self) -> str:
        import torch

        h = hashlib.sha256()
        config = {k: v for k, v in self.model.config.to_dict().items() if k != "_name_or_path"}
        h.update(json.dumps(config, sort_keys=True, default=str).encode())
        h.update(json.dumps([len(self.tokenizer), self.tokenizer.bos_token_id, self.tokenizer.eos_token_id,
                             getattr(self.tokenizer, "chat_template", None), self._use_chat]).encode())
        for pname, p in self.model.named_parameters():
            flat = p.detach().reshape(-1)
            idx = _strided(flat.numel(), 64, flat.device)
            norm = torch.linalg.vector_norm(flat, dtype=torch.float64).item()
            h.update(f"{pname}{tuple(p.shape)}{p.dtype}{norm:.12e}".encode())
            h.update(flat[idx].float().cpu().numpy().tobytes())
        return "hf-" + h.hexdigest()[:16]

    def rendered_prompt(self, prompt: str) -> str | None:
        """The prompt as the model receives it when the chat template changes it (else None): traces keep
        it."""
        return self.tokenizer.decode(self.encode_prompt(prompt)) if self._use_chat else None

    def encode_prompt(self, prompt: str) -> list[int]:
        """Token ids of a prompt as the model sees it (chat template and special tokens applied)."""
        tok = self.tokenizer
        if self._use_chat:
            ids = list(tok(chat.render_with_template(tok, prompt), add_special_tokens=False)["input_ids"])
        else:
            ids = list(tok(chat.plain(prompt))["input_ids"])
        if not ids and tok.bos_token_id is not None:
            ids = [tok.bos_token_id]  # an empty prompt still needs one position to predict from
        return ids

    def render_prompt(self, prompt: str) -> str:
        """The exact text the model receives for ``prompt`` (template and special tokens included)."""
        return self.tokenizer.decode(self.encode_prompt(prompt), skip_special_tokens=False)

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        """One list of ``params.n`` completions per prompt, in prompt order (duplicates share the work)."""
        import torch

        seed = params.seed if params.seed is not None else secrets.randbits(63)
        done: dict[str, list[Completion | None]] = {}
        pieces: list[Piece] = []
        for prompt in prompts:
            if prompt in done:
                continue
            done[prompt] = [None] * params.n
            ids = self.encode_prompt(prompt)
            room = params.max_tokens if self._context is None else min(params.max_tokens,
                                                                        self._context - len(ids))
            if not ids or room < 1:
                why = "empty prompt and no BOS token" if not ids else (
                    f"prompt has {len(ids)} tokens and fills the model's context of {self._context}")
                done[prompt] = [Completion(text="", finish_reason="error", prompt_tokens=len(ids), error=why)
                                for _ in range(params.n)]
                continue
            pieces.append(Piece(prompt, tuple(ids), 0, params.n, room))
        with _inference(self.model), sliced_output_layer(self.model), torch.inference_mode():
            for chunk in plan(pieces, self.config.max_batch_tokens):
                for piece, comps in zip(chunk, self._run_chunk(chunk, params, seed)):
                    done[piece.prompt][piece.start:piece.stop] = comps
        return [list(done[p]) for p in prompts]

    def _run_chunk(self, chunk: list[Piece], params: SamplingParams, seed: int) -> list[list[Completion]]:
        """Prefill the chunk's prompts once, expand to one row per sample, decode until every row is done."""
        import torch

        dev = self.model.device
        rows = [(pi, i) for pi, piece in enumerate(chunk) for i in range(piece.start, piece.stop)]
        row_piece = torch.tensor([pi for pi, _ in rows], device=dev)
        cache, logits, mask, pos = self._prefill([piece.ids for piece in chunk])
        cache.batch_select_indices(row_piece)
        logits, mask, pos = logits[row_piece], mask[row_piece], pos[row_piece]
        uniforms = None if params.greedy else _uniforms(
            [(chunk[pi].prompt, i) for pi, i in rows], seed, params.max_tokens).to(dev)
        max_new = [chunk[pi].max_new for pi, _ in rows]
        tokens: list[list[int]] = [[] for _ in rows]
        lps: list[list[float]] = [[] for _ in rows]
        finish: list[str | None] = [None] * len(rows)
        alive = torch.arange(len(rows), device=dev)  # batch position -> row, shrinks as rows finish
        for t in range(max(max_new)):
            logits = logits.float()
            chosen = _choose(logits, params, None if uniforms is None else uniforms[alive, t])
            chosen_lp = torch.log_softmax(logits, dim=-1).gather(-1, chosen[:, None])[:, 0]
            for r, tok, lp in zip(alive.tolist(), chosen.tolist(), chosen_lp.tolist()):
                if finish[r] is None:
                    finish[r] = self._step_row(tokens[r], lps[r], tok, lp, max_new[r], params.stop)
            keep = [b for b, r in enumerate(alive.tolist()) if finish[r] is None]
            if not keep:
                break
            if len(alive) - len(keep) >= max(1, len(alive) // 4):  # drop finished rows, not every time
                sel = torch.tensor(keep, device=dev)
                cache.batch_select_indices(sel)
                alive, chosen, mask, pos = alive[sel], chosen[sel], mask[sel], pos[sel]
            mask = torch.cat([mask, mask.new_ones(len(alive), 1)], dim=-1)
            out = self.model(input_ids=chosen[:, None], attention_mask=mask, position_ids=pos[:, None],
                             cache=cache, use_cache=True, logits_to_keep=1)
            logits, pos = out.logits[:, -1, :], pos + 1
        out_rows = [self._completion(tokens[r], lps[r], finish[r] or "length", len(chunk[pi].ids),
                                     params.stop)
                    for r, (pi, _) in enumerate(rows)]
        grouped: list[list[Completion]] = [[] for _ in chunk]
        for (pi, _), comp in zip(rows, out_rows):
            grouped[pi].append(comp)
        return grouped

    def _prefill(self, prompts: list[tuple[int, ...]]):
        """(cache, last logits, mask, next positions) of distinct prompts, left-padded (``prefill``)."""
        return prefill(self.model, prompts, self._pad)

    def _step_row(self, tokens: list[int], lps: list[float], tok: int, lp: float, max_new: int,
                  stop: Sequence[str]) -> str | None:
        """Append one sampled token to a row; return its finish reason once it is done, else None."""
        if tok in self._eos:
            return "stop"
        tokens.append(tok)
        lps.append(lp)
        # Only the new tail can complete a stop string; the exact cut is made on the full text later. A token
        # whose text cannot end a stop string skips the (per-token, per-row) decode: the common case.
        if stop and self._may_end_stop(tok, tuple(stop)):
            tail = self._decode(tokens[-(max(map(len, stop), default=0) + 2):])
            if any(s and s in tail for s in stop) and apply_stop(self._decode(tokens), stop)[1]:
                return "stop"
        return "length" if len(tokens) >= max_new else None

    def _may_end_stop(self, tok: int, stop: tuple[str, ...]) -> bool:
        """False only when token ``tok`` cannot complete any of the ``stop`` strings: a stop string completed
        by this token ends inside the text the token adds, so that text contains the stop string's last
        character. Tokens whose text alone is unreliable (empty, a partial UTF-8 byte) always get the exact
        check, and so does every token when a stop string ends in a space (a tokenizer may add a token's
        leading space only in context)."""
        ends = self._stop_ends.get(stop)
        if ends is None:
            last = {s[-1] for s in stop if s}
            if " " in last:
                ends = self._stop_ends[stop] = frozenset(range(len(self.tokenizer)))
            else:
                pieces = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))],
                                                     skip_special_tokens=True)
                ends = self._stop_ends[stop] = frozenset(
                    i for i, p in enumerate(pieces) if not p or "\ufffd" in p or any(c in p for c in last))
        return tok in ends

    def _completion(self, tokens: list[int], lps: list[float], finish: str, n_prompt: int,
                    stop: Sequence[str]) -> Completion:
        text, stopped = apply_stop(self._decode(tokens), stop)
        if stopped:
            finish = "stop"
            kept = 0  # tokens whose text lies wholly inside the kept text
            while kept < len(tokens) and text.startswith(piece := self._decode(tokens[:kept + 1])) \
                    and len(piece) <= len(text):
                kept += 1
            tokens, lps = tokens[:kept], lps[:kept]
        return Completion(text=text, token_logprobs=tuple(lps), finish_reason=finish, prompt_tokens=n_prompt,
                          completion_tokens=len(tokens), logprobs_source="raw",
                          tokens=self._token_texts(tokens))

    def _token_texts(self, tokens: Sequence[int]) -> tuple[str, ...]:
        """Each token's text decoded alone, as ``batch_decode([[t] ...])`` gives it, each id decoded once per
        backend (a tokenizer call per token and completion cost ~5 % of the tiny model's generation CPU
        time)."""
        missing = [t for t in dict.fromkeys(tokens) if t not in self._pieces]
        if missing:
            texts = self.tokenizer.batch_decode([[t] for t in missing], skip_special_tokens=True)
            self._pieces.update(zip(missing, texts))
        return tuple(self._pieces[t] for t in tokens)

    def loglikelihood(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Sum of log p(continuation tokens | prompt), the prompt encoded as in ``generate``."""
        import torch

        if len(prompts) != len(continuations):
            raise ValueError(f"loglikelihood needs one continuation per prompt, got {len(prompts)} prompts "
                             f"and {len(continuations)} continuations")
        items = []
        for k, (p, c) in enumerate(zip(prompts, continuations)):
            ctx, cont = self.encode_prompt(p), list(self.tokenizer(c, add_special_tokens=False)["input_ids"])
            if cont and not ctx:
                raise UserError("cannot score a continuation after an empty prompt without a BOS token",
                                example_id=str(k), field="prompts")
            if self._context is not None and len(ctx) + len(cont) > self._context:
                raise UserError(f"prompt + continuation is {len(ctx) + len(cont)} tokens, over the model's "
                                f"context of {self._context}", example_id=str(k), field="continuations")
            items.append((ctx, cont))
        scores = [0.0] * len(items)  # an empty continuation has log-likelihood 0
        order = sorted((k for k in range(len(items)) if items[k][1]), key=lambda k: sum(map(len, items[k])))
        batches: list[list[int]] = [[]]
        for k in order:  # ascending length, so item k is the widest of its batch
            if (batches[-1]
                    and (len(batches[-1]) + 1) * sum(map(len, items[k])) > self.config.max_batch_tokens):
                batches.append([])
            batches[-1].append(k)
        with _inference(self.model), torch.inference_mode():
            for batch in filter(None, batches):
                for k, score in zip(batch, self._score([items[k] for k in batch])):
                    scores[k] = score
        return scores

    def _score(self, items: list[tuple[list[int], list[int]]]) -> list[float]:
        import torch

        ids, mask, pos = left_pad([tuple(c + x) for c, x in items], self._pad, self.model.device)
        keep = max(len(x) for _, x in items) + 1
        logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep).logits
        logp = torch.log_softmax(logits.float(), dim=-1)  # position j predicts token j + 1
        out = []
        for b, (_, cont) in enumerate(items):
            target = torch.tensor(cont, device=logp.device)
            rows = logp[b, keep - 1 - len(cont):keep - 1]
            out.append(float(rows.gather(-1, target[:, None]).sum()))
        return out



def _strided(numel: int, k: int, device):
    """``min(numel, k)`` evenly spaced indices into ``numel`` elements, first and last included, computed in
    integers (a float32 ``linspace`` rounds the last index up to ``numel`` above 2**24 elements)."""
    import torch

    k = min(numel, k)
    return torch.arange(k, dtype=torch.int64, device=device) * (numel - 1) // max(k - 1, 1)


def _load(config: HFConfig):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = "auto" if config.dtype == "auto" else getattr(torch, config.dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(config.model)
        model = AutoModelForCausalLM.from_pretrained(config.model, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load a causal LM from {config.model!r}: {exc}", field="model") from exc
    return model.to(config.device).eval(), tokenizer


@contextlib.contextmanager
def _inference(model):
    """Eval mode (no dropout) for the duration, restoring the caller's training mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
