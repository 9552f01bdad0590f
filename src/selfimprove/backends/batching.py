"""How the ``hf`` backend batches its decoding: distinct prompts packed into chunks of at most a budget of
padded tokens (a large ``n`` split across chunks), left padding with positions that count real tokens, and
the token prefix a chunk's prompts share (few-shot examples, a system message), which is encoded once."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Piece:
    """Samples [start, stop) of one distinct prompt, decoded in one chunk."""

    prompt: str
    ids: tuple[int, ...]
    start: int
    stop: int
    max_new: int


def plan(pieces: list[Piece], budget: int) -> list[list[Piece]]:
    """Pack prompts (shortest first) into chunks of at most ``budget`` padded tokens; split big ``n``."""
    chunks: list[list[Piece]] = []
    current: list[Piece] = []
    for piece in sorted(pieces, key=lambda p: len(p.ids)):
        per_row = len(piece.ids) + piece.max_new
        step = max(1, budget // per_row)
        for start in range(piece.start, piece.stop, step):
            part = Piece(piece.prompt, piece.ids, start, min(piece.stop, start + step), piece.max_new)
            trial = current + [part]
            width = max(len(p.ids) for p in trial) + max(p.max_new for p in trial)
            if current and sum(p.stop - p.start for p in trial) * width > budget:
                chunks.append(current)
                trial = [part]
            current = trial
    return chunks + ([current] if current else [])


def left_pad(seqs: Sequence[Sequence[int]], pad: int, device):
    """(ids, attention mask, position ids) for left-padded sequences; positions count real tokens only."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for b, s in enumerate(seqs):
        if s:
            ids[b, width - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[b, width - len(s):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), pos.to(device)


MIN_SHARED = 16
"""The shortest common prefix (tokens) worth a forward pass of its own; shorter ones go with each prompt."""


def shared_prefix(seqs: Sequence[Sequence[int]]) -> int:
    """How many leading tokens every sequence shares, leaving each at least its last token (whose logits
    start decoding or scoring); 0 for fewer than two sequences or a prefix shorter than ``MIN_SHARED``."""
    if len(seqs) < 2:
        return 0
    k = min(len(os.path.commonprefix([list(s) for s in seqs])), min(len(s) for s in seqs) - 1)
    return k if k >= MIN_SHARED else 0
