"""Generation–verification gap: how much better is the model at picking than at producing?

Implements the diagnostic of *Mind the Gap: Examining the Self-Improvement Capabilities of Large Language
Models* (arXiv:2412.02674): gap(f) = J(f[w(u)]) − J(f), the accuracy of the generator's samples after the
model's own verification score u selects among them, minus the accuracy of raw samples, and the relative gap
gap / (1 − J(f)) whose scaling the paper studies. Best-of-n by self-score is also the inference-time form of
sharpening (*Self-Improvement in Language Models: The Sharpening Mechanism*, arXiv:2412.01951). A gap near 0
means self-training on self-verified data has nothing to amplify.

Per question i with decided samples j (correct c_ij, score u_ij):

- mean sample accuracy pᵢ = mean_j c_ij;
- selected accuracy sᵢ:
  - ``threshold=None`` (top-1, best-of-n): the mean of c_ij over the samples sharing the highest score,
    i.e. the expected accuracy when ties are broken at random;
  - ``threshold=τ`` (filtering): the mean of c_ij over samples with u_ij ≥ τ.
- ``gap`` = mean_i sᵢ − mean_i pᵢ, ``relative_gap`` = gap / (1 − mean_i pᵢ) (None when mean pᵢ = 1).

Both means run over the same questions, so the difference compares like with like. Failure is data:

- a sample with ``correct`` None is counted in ``n_undecided`` and dropped before either term;
- a decided sample with ``score`` None cannot be ranked: counted in ``n_unscored``, it still counts in pᵢ;
- a question with no decided sample is counted in ``questions_undecided``; one whose decided samples are all
  unscored, or all below τ, has no selection and is counted in ``questions_no_selection``; both are left
  out of both terms. ``n_questions`` is the number that remains.

``gap_from_traces`` reads the same quantities from the traces of a selection strategy (``best-of-n``): the
pool of its first generate step and the per-sample self-verification scores in ``info['scores']``; it also
reports how well those scores separate right samples from wrong ones (calibration over scored samples). An
unparseable sample of an example with a gold answer counts as wrong (as in accuracy); it is never scored.

Not covered: the paper's reweighting (rather than filtering) of the distribution, its utility functions other
than accuracy, and the distillation step that follows the verification.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

from .calibration import calibration


def generation_verification_gap(ids: Sequence[Hashable], correct: Sequence[bool | None],
                                scores: Sequence[float | None], *,
                                threshold: float | None = None) -> dict[str, Any]:
    """Gap and relative gap from per-sample rows (parallel sequences; ``ids`` groups samples by question).

    Keys: ``mean_sample_accuracy``, ``selected_accuracy``, ``gap``, ``relative_gap``, ``selection``
    ('top1' or 'threshold'), ``threshold``, ``n`` (decided samples) and the counts described in the module
    docstring.
    Raises ValueError on mismatched lengths.
    """
    if not len(ids) == len(correct) == len(scores):
        raise ValueError(f"ids, correct and scores must have one entry per sample; got "
                         f"{len(ids)}, {len(correct)}, {len(scores)}")
    groups: dict[Hashable, list[tuple[bool, float | None]]] = {}
    seen: set[Hashable] = set()
    n_undecided = n_unscored = 0
    for qid, c, u in zip(ids, correct, scores):
        seen.add(qid)
        if c is None:
            n_undecided += 1
            continue
        n_unscored += u is None
        groups.setdefault(qid, []).append((bool(c), None if u is None else float(u)))

    sample_acc, selected_acc = [], []
    no_selection = 0
    for samples in groups.values():
        picked = _select(samples, threshold)
        if not picked:
            no_selection += 1
            continue
        sample_acc.append(sum(c for c, _ in samples) / len(samples))
        selected_acc.append(sum(picked) / len(picked))

    n_q = len(sample_acc)
    mean_p = math.fsum(sample_acc) / n_q if n_q else None
    mean_s = math.fsum(selected_acc) / n_q if n_q else None
    gap = None if mean_p is None else mean_s - mean_p
    # mean_p is exactly 1.0 when every kept sample is correct (a mean of 1.0s), so the check is exact
    relative = None if gap is None or mean_p >= 1.0 else gap / (1.0 - mean_p)
    return {
        "n": sum(len(groups[q]) for q in groups),
        "n_undecided": n_undecided,
        "n_unscored": n_unscored,
        "n_questions": n_q,
        "questions_undecided": len(seen) - len(groups),
        "questions_no_selection": no_selection,
        "selection": "top1" if threshold is None else "threshold",
        "threshold": threshold,
        "mean_sample_accuracy": mean_p,
        "selected_accuracy": mean_s,
        "gap": gap,
        "relative_gap": relative,
    }


def gap_from_traces(task, examples: Sequence[Any], traces: Sequence[Any]) -> dict[str, Any] | None:
    """``generation_verification_gap`` (top-1) over the sample pools of traces carrying ``info['scores']``,
    plus ``sample_calibration``: ECE, Brier and AUROC of the scores against each scored sample's correctness.

    ``task.check(example, answer)`` decides each sample (gold is read here, after the strategy ran). Returns
    None when no trace carries per-sample scores (the strategy did not self-verify a pool).
    """
    by_id = {e.id: e for e in examples}
    ids, correct, scores = [], [], []
    for t in traces:
        pool = next((s for s in t.steps if s.kind == "generate"), None)
        sc = t.info.get("scores")
        if pool is None or sc is None:
            continue
        if len(sc) != len(pool.answers):
            raise ValueError(f"trace {t.example_id}: {len(sc)} scores for {len(pool.answers)} samples")
        ex = by_id[t.example_id]
        for answer, u in zip(pool.answers, sc):
            ids.append(t.example_id)
            correct.append(False if answer is None and ex.answer is not None else task.check(ex, answer))
            scores.append(u)
    if not ids:
        return None
    out = generation_verification_gap(ids, correct, scores)
    cal = calibration(scores, correct)
    out["sample_calibration"] = {k: cal[k] for k in ("n", "n_missing", "accuracy", "mean_confidence", "ece",
                                                      "brier", "auroc")}
    return out


def _select(samples: list[tuple[bool, float | None]], threshold: float | None) -> list[bool]:
    """Correctness of the selected samples: all tied at the top score, or all scoring ≥ threshold."""
    scored = [(c, u) for c, u in samples if u is not None]
    if not scored:
        return []
    if threshold is None:
        best = max(u for _, u in scored)
        return [c for c, u in scored if u == best]
    return [c for c, u in scored if u >= threshold]
