"""The statistics every report shares (one copy each): paired tests of two strategies on the same examples,
confidence intervals of a mean and of a proportion, and AUROC.

Paired statistics: is strategy B's accuracy really different from strategy A's on the same examples?

Two strategies run on the same examples give paired outcomes, and the pairing is where the power is: the
examples both get right or both get wrong say nothing about the difference.

- ``mcnemar_exact(a, b)``: the exact McNemar test. Under H0 (equal accuracy) each discordant pair is
  equally likely to favour A or B, so with a_only = #(A right, B wrong), b_only = #(A wrong, B right) and
  m = a_only + b_only, the two-sided p-value is
  p = min(1, 2·Σ_{k ≤ min(a_only, b_only)} C(m, k) / 2^m), computed in exact integer arithmetic (no scipy);
  p = 1 when m = 0.
- ``paired_bootstrap(a, b)``: a percentile bootstrap CI of acc_B − acc_A, resampling examples (pairs) with
  replacement, ``n_resamples`` = 10,000 by default, from ``numpy.random.default_rng(seed)`` (seed 0 by
  default, so the same inputs give the same interval). Because each pair's difference dᵢ = B − A takes only
  the values −1, 0, +1, resampling n pairs is exactly a multinomial draw of how many of each value are
  picked; the code draws those three counts instead of n indices (same distribution, O(1) memory per
  resample), so its stream differs from an index-resampling implementation with the same seed.

Inputs are mappings ``example id -> correct`` (``correct_by_id`` builds one from traces, counting an
unparseable answer wrong as accuracy does, and a failed request as None). They must cover the same ids —
otherwise ValueError naming the ids missing on each side — and a pair where either side is None is counted in
``n_undecided`` and left out. Differences are always B minus A.

Also: ``bootstrap_ci`` (percentile bootstrap of a mean), ``wilson_ci`` (Wilson score interval of a proportion)
and ``auroc`` (rank-based, ties ½, any real scores).

Not covered: more than two strategies (Cochran's Q) or multiple-comparison correction, the mid-p or
asymptotic χ² McNemar variants, BCa bootstrap intervals, and unpaired comparisons on different examples.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_RESAMPLES = 10_000
"""Bootstrap resamples: enough that the 2.5 % / 97.5 % percentiles barely move between seeds."""


def mcnemar_exact(a: Mapping[Hashable, bool | None], b: Mapping[Hashable, bool | None]) -> dict[str, Any]:
    """Exact two-sided McNemar test of A versus B on the same examples.

    Keys: ``n`` (decided pairs), ``n_undecided``, ``acc_a``, ``acc_b``, ``diff`` (acc_b − acc_a),
    ``both_correct``, ``both_wrong``, ``a_only``, ``b_only`` and ``p_value``.
    """
    pairs, n_undecided = _align(a, b)
    cells = {"both_correct": 0, "both_wrong": 0, "a_only": 0, "b_only": 0}
    for x, y in pairs:
        key = ("both_correct" if y else "a_only") if x else ("b_only" if y else "both_wrong")
        cells[key] += 1
    n = len(pairs)
    acc_a = (cells["both_correct"] + cells["a_only"]) / n if n else None
    acc_b = (cells["both_correct"] + cells["b_only"]) / n if n else None
    return {"n": n, "n_undecided": n_undecided, "acc_a": acc_a, "acc_b": acc_b,
            "diff": None if n == 0 else acc_b - acc_a, **cells,
            "p_value": exact_binomial_two_sided(cells["a_only"], cells["b_only"])}


def exact_binomial_two_sided(k1: int, k2: int) -> float:
    """Two-sided exact sign-test p-value for k1 versus k2 successes at p = ½: min(1, 2·P(X ≤ min(k1, k2)))."""
    m = k1 + k2
    if m == 0:
        return 1.0
    # C(m, 0); each next binomial coefficient from the last, exactly: C(m, k+1) = C(m, k)(m-k)/(k+1)
    term = tail = 1
    for k in range(min(k1, k2)):
        term = term * (m - k) // (k + 1)
        tail += term
    return min(1.0, 2 * tail / 2 ** m)  # int / int is correctly rounded even for huge m


def paired_bootstrap(a: Mapping[Hashable, bool | None], b: Mapping[Hashable, bool | None], *,
                     n_resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95,
                     seed: int = 0) -> dict[str, Any]:
    """Percentile bootstrap CI of acc_b − acc_a over paired examples.

    Keys: ``n``, ``n_undecided``, ``acc_a``, ``acc_b``, ``diff``, ``ci_low``, ``ci_high``, ``confidence``,
    ``n_resamples``, ``seed``, ``method`` ('percentile'). CI values are None when there are no pairs.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence}")
    pairs, n_undecided = _align(a, b)
    n = len(pairs)
    out: dict[str, Any] = {"n": n, "n_undecided": n_undecided, "acc_a": None, "acc_b": None, "diff": None,
                           "ci_low": None, "ci_high": None, "confidence": confidence,
                           "n_resamples": n_resamples, "seed": seed, "method": "percentile"}
    if n == 0:
        return out
    d = [int(bool(y)) - int(bool(x)) for x, y in pairs]
    n_minus, n_plus = d.count(-1), d.count(1)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, [n_minus / n, (n - n_minus - n_plus) / n, n_plus / n], size=n_resamples)
    diffs = (draws[:, 2] - draws[:, 0]) / n
    alpha = 1.0 - confidence
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    out.update(acc_a=sum(bool(x) for x, _ in pairs) / n, acc_b=sum(bool(y) for _, y in pairs) / n,
               diff=(n_plus - n_minus) / n, ci_low=float(low), ci_high=float(high))
    return out


def outcome(trace: Any) -> bool | None:
    """One example's outcome for a paired test, as accuracy counts it: an unparseable or undecidable answer
    is wrong (False); only a failed request (no answer at all, ``status != "ok"``) is None, which the tests
    count in ``n_undecided`` and leave out."""
    return None if getattr(trace, "status", "ok") != "ok" else bool(trace.correct)


def correct_by_id(traces: Iterable[Any]) -> dict[str, bool | None]:
    """``{example_id: outcome}`` from one strategy's traces (see ``outcome``: the same convention as the
    accuracy beside it); ValueError on a repeated example id."""
    out: dict[str, bool | None] = {}
    for t in traces:
        if t.example_id in out:
            raise ValueError(f"example {t.example_id!r} has more than one trace; paired tests need one "
                             f"result per example (pick one sample, or aggregate first)")
        out[t.example_id] = outcome(t)
    return out


def _align(a: Mapping[Hashable, bool | None], b: Mapping[Hashable, bool | None]):
    """Pairs (a[id], b[id]) over the shared ids in a's order, and the count with a None on either side."""
    missing_b = [k for k in a if k not in b]
    missing_a = [k for k in b if k not in a]
    if missing_a or missing_b:
        parts = [f"{len(ids)} id(s) missing from {side}: {_show(ids)}"
                 for side, ids in (("a", missing_a), ("b", missing_b)) if ids]
        raise ValueError("paired inputs must cover the same examples; " + "; ".join(parts))
    pairs = [(a[k], b[k]) for k in a]
    decided = [(x, y) for x, y in pairs if x is not None and y is not None]
    return decided, len(pairs) - len(decided)


def _show(ids: list[Hashable], limit: int = 10) -> str:
    shown = ", ".join(repr(k) for k in ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


# ---- intervals and ranking ------------------------------------------------------------------------------


def bootstrap_ci(values: Sequence[float], resamples: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap CI of the mean of ``values``; None for an empty list."""
    if len(values) == 0:
        return None
    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def wilson_ci(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval of a proportion; None when n = 0."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(score of a positive > score of a negative), ties counted ½ (any real scores, not only
    probabilities), from average ranks (Mann–Whitney U); None unless both classes occur."""
    if len(scores) != len(labels):
        raise ValueError(f"auroc: {len(scores)} scores but {len(labels)} labels")
    labels = [bool(y) for y in labels]
    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks([float(s) for s in scores])
    rank_sum_pos = math.fsum(r for r, y in zip(ranks, labels) if y)
    return (rank_sum_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, tied values sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for t in range(i, j + 1):
            ranks[order[t]] = (i + j) / 2 + 1
        i = j + 1
    return ranks
