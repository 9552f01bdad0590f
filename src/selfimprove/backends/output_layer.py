"""The output layer in slices while the ``hf`` backend decodes.

On a CPU, one fp32 matmul of a few dozen rows against a large vocabulary's output matrix (SmolLM2: 49,152 x
576) ran about 1.5x slower than the same product taken 512 vocabulary rows at a time and concatenated (torch
2.13 with MKL, one thread: 173 ms against 108 ms for 32 rows; no gain for one row). Each logit is the same dot
product either way, so the logits are bit-identical (``torch.equal``; tested). ``sliced_output_layer`` applies
this to a model's output layer for the duration of a ``with`` block when that layer is a plain ``nn.Linear``
over a large vocabulary, and restores it afterwards; any other kind of output layer (a LoRA wrapper) is left
alone, and what a model does with the logits afterwards (scaling, soft-capping) is unchanged.
"""

from __future__ import annotations

import contextlib
from typing import Any

SLICE = 512
"""Vocabulary rows per matmul."""
MIN_VOCAB = 8192
"""Slice only output layers at least this wide (small ones gain nothing)."""


@contextlib.contextmanager
def sliced_output_layer(model: Any):
    """Within the block, ``model``'s output layer computes its logits ``SLICE`` vocabulary rows at a time."""
    import torch

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if type(head) is not torch.nn.Linear or head.out_features < MIN_VOCAB or "forward" in vars(head):
        yield
        return
    weights = head.weight.split(SLICE)
    biases = head.bias.split(SLICE) if head.bias is not None else [None] * len(weights)

    def forward(hidden):
        return torch.cat([torch.nn.functional.linear(hidden, w, b) for w, b in zip(weights, biases)], dim=-1)

    head.forward = forward
    try:
        yield
    finally:
        del head.forward
