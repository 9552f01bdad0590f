"""Token choice for the ``hf`` backend: per-sample uniforms keyed by (seed, prompt, sample index) and
inverse-CDF sampling after temperature, top-k and top-p, so a sample does not depend on its batch."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ..records import SamplingParams


def uniforms(rows: Sequence[tuple[str, int]], seed: int, steps: int):
    """One uniform per decoding step per row, from a generator keyed by (seed, prompt, sample index)."""
    import torch

    out = torch.empty((len(rows), steps))
    for r, (prompt, i) in enumerate(rows):
        key = hashlib.sha256(f"{seed}\x00{i}\x00{prompt}".encode()).digest()
        gen = torch.Generator().manual_seed(int.from_bytes(key[:8], "little") & (2**63 - 1))
        out[r] = torch.rand(steps, generator=gen)
    return out


def choose(logits, params: SamplingParams, u):
    """Next token per row: argmax when greedy, else inverse-CDF sampling after temperature, top-k, top-p."""
    import torch

    if params.greedy:
        return logits.argmax(dim=-1)
    scaled = logits / params.temperature
    if params.top_k == -1 and params.top_p >= 1.0:
        return inverse_cdf(torch.softmax(scaled, dim=-1), u)
    k = scaled.shape[-1] if params.top_k == -1 else min(params.top_k, scaled.shape[-1])
    values, index = scaled.topk(k, dim=-1)  # sorted, largest first
    probs = torch.softmax(values, dim=-1)
    if params.top_p < 1.0:
        # keep the smallest prefix whose mass reaches top_p (the token that crosses it included)
        probs = probs.masked_fill(probs.cumsum(-1) - probs >= params.top_p, 0.0)
    return index.gather(-1, inverse_cdf(probs, u)[:, None])[:, 0]


def inverse_cdf(probs, u):
    """Index of the first token whose cumulative mass exceeds ``u`` times the row's total mass."""
    import torch

    cdf = probs.cumsum(-1)
    target = (u.to(cdf.dtype) * cdf[:, -1])[:, None]
    return torch.searchsorted(cdf, target, right=True)[:, 0].clamp(max=probs.shape[-1] - 1)
