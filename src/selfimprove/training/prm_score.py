"""A saved process reward model at work (``training.prm`` labels and trains it): ``PRMScorer`` scores each
step of a solution, ``aggregate`` turns step scores into one score per solution, and ``prm_metrics`` measures
step-level agreement with held-out rollout labels.

Not covered: scoring through a backend (the PRM is a local token-classification model).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .prm import PRMRow, step_positions


class PRMScorer:
    """A saved PRM: ``score(prompts, steps)`` → P(good) per step, batched."""

    def __init__(self, path: str | Path, batch_size: int = 32) -> None:
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        path = Path(path)
        if not (path / "prm.json").exists():
            raise FileNotFoundError(
                f"{path} is not a PRM directory (no prm.json); train one with "
                "scripts/prm_study.py or `selfimprove train --method rest-mcts` "
                "(round-<r>/prm)"
            )
        self.path, self.batch_size = path, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        info = json.loads((path / "prm.json").read_text())
        self.chat = bool(info.get("chat", True))
        self.delimiter: str | None = info.get("delimiter")
        """The step delimiter the PRM was trained on when it replaced the task's own (None: the task's)."""
        self.model = AutoModelForTokenClassification.from_pretrained(str(path)).eval()
        self.pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.scored_tokens = 0
        """Tokens read by every ``score`` call so far (prefill only; the PRM generates nothing)."""

    def score(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float]]:
        import torch

        enc = [step_positions(self.tokenizer, p, s, self.chat) for p, s in zip(prompts, steps)]
        out: list[list[float]] = []
        for a in range(0, len(enc), self.batch_size):
            chunk = enc[a : a + self.batch_size]
            n = max((len(ids) for ids, _ in chunk), default=0)
            if n == 0:
                out.extend([] for _ in chunk)
                continue
            ids = torch.tensor([i + [self.pad] * (n - len(i)) for i, _ in chunk])
            mask = torch.tensor([[1] * len(i) + [0] * (n - len(i)) for i, _ in chunk])
            self.scored_tokens += sum(len(i) for i, _ in chunk)
            with torch.no_grad():
                probs = torch.softmax(self.model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
            for b, (_, pos) in enumerate(chunk):
                out.append([float(probs[b, p, 1]) for p in pos])
        return out


AGGREGATES = ("last", "min", "product")


def aggregate(scores: Sequence[float], how: str) -> float | None:
    """One score for a solution from its step scores: the last step's, the minimum, or the product."""
    if how not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {how!r}")
    if not scores:
        return None
    if how == "last":
        return float(scores[-1])
    if how == "min":
        return float(min(scores))
    return float(math.prod(scores))


def prm_metrics(
    predicted: Sequence[Sequence[float]], rows: Sequence[PRMRow], threshold: float = 0.5
) -> dict[str, Any]:
    """Step-level agreement of PRM scores with rollout labels (a label ≥ 0.5 is 'good'): accuracy, F1 of the
    good and of the bad class, the majority-class baseline, and the share of solutions whose first bad step
    the PRM finds exactly."""
    pairs = [(p >= threshold, y >= 0.5) for ps, r in zip(predicted, rows) for p, y in zip(ps, r.labels)]
    n = len(pairs)
    if not n:
        return {"steps": 0, "solutions": len(rows)}

    def f1(cls: bool) -> float | None:
        tp = sum(p == cls and y == cls for p, y in pairs)
        fp = sum(p == cls and y != cls for p, y in pairs)
        fn = sum(p != cls and y == cls for p, y in pairs)
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None

    good = sum(y for _, y in pairs)
    with_error = [(ps, r) for ps, r in zip(predicted, rows) if any(y < 0.5 for y in r.labels)]
    first = [
        next((i for i, p in enumerate(ps) if p < threshold), None)
        == next(i for i, y in enumerate(r.labels) if y < 0.5)
        for ps, r in with_error
    ]
    return {
        "steps": n,
        "solutions": len(rows),
        "accuracy": sum(p == y for p, y in pairs) / n,
        "f1_good": f1(True),
        "f1_bad": f1(False),
        "good_share": good / n,
        "majority_baseline": max(good, n - good) / n,
        "first_error_found": sum(first) / len(first) if first else None,
        "solutions_with_error": len(with_error),
        "threshold": threshold,
    }


__all__ = ["AGGREGATES", "PRMScorer", "aggregate", "prm_metrics"]
