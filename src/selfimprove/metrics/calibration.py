"""Calibration of self-evaluation: does the model's confidence track its correctness?

Serves P(True) / P(IK) (*Language Models (Mostly) Know What They Know*, arXiv:2207.05221), verbalised
confidence and vote shares, judged the usual ways: ECE and a reliability diagram, the Brier score, AUROC and
selective prediction (accuracy at coverage and AUACC, the area under the accuracy–coverage curve, as
reported by ASPIRE, *Adaptation with Self-Evaluation to Improve Selective Prediction in LLMs*,
arXiv:2310.11689).

Conventions (they change numbers, so they are stated):

- **Bins** are ``bins`` equal-width intervals [k/B, (k+1)/B), the last one closed at 1.0. A confidence is
  compared with the edges k/B as floats, so 0.57 falls in [0.57, 0.58) with B = 100 even though 0.57·100 is
  56.99999… in binary floating point.
- **ECE** = Σ_b (n_b / n)·|acc_b − conf_b| over non-empty bins (Guo et al. 2017's estimator).
- **Brier** = (1/n) Σ (confidence − correct)².
- **AUROC** is the probability that a correct sample gets a higher confidence than a wrong one, ties counting
  one half: the Mann–Whitney U statistic with average ranks. None when only one class is present.
- **Selective accuracy at coverage c** keeps the k = ⌈c·n⌉ most confident samples. Where the k-th confidence
  is tied with samples left out, the tied group contributes its *expected* accuracy under a random choice
  among them (deterministic, and independent of input order).
  AUACC = (1/n) Σ_{k=1..n} selective accuracy at k.
- **Missing data**: a sample whose confidence or correctness is None is counted in ``n_missing`` and left out
  of every statistic; ``n`` is the count that remains.

Not covered: adaptive (equal-mass) binning, classwise / top-label ECE for multi-class probabilities,
temperature scaling or any recalibration, and confidence intervals on these statistics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from . import stats

DEFAULT_COVERAGES = (0.2, 0.4, 0.6, 0.8, 1.0)
"""Coverage levels at which ``calibration`` reports selective accuracy."""


def calibration(confidences: Sequence[float | None], correct: Sequence[bool | None], *, bins: int = 10,
                coverages: Sequence[float] = DEFAULT_COVERAGES) -> dict[str, Any]:
    """Every calibration statistic of this module in one plain dict.

    Keys: ``n``, ``n_missing``, ``accuracy``, ``mean_confidence``, ``ece``, ``brier``, ``auroc``, ``auacc``,
    ``bins``, ``reliability`` (list of per-bin dicts) and ``selective`` (list of per-coverage dicts).
    Rates are None when ``n`` is 0. Raises ValueError on mismatched lengths or a confidence outside [0, 1].
    """
    conf, corr, n_missing = _clean(confidences, correct)
    n = len(conf)
    return {
        "n": n,
        "n_missing": n_missing,
        "accuracy": sum(corr) / n if n else None,
        "mean_confidence": math.fsum(conf) / n if n else None,
        "ece": expected_calibration_error(conf, corr, bins=bins),
        "brier": brier_score(conf, corr),
        "auroc": auroc(conf, corr),
        "auacc": area_under_accuracy_coverage(conf, corr),
        "bins": bins,
        "reliability": reliability_diagram(conf, corr, bins=bins),
        "selective": selective_accuracy(conf, corr, coverages=coverages),
    }


def calibration_from_traces(traces: Iterable[Any], *, unparsed_as_wrong: bool = False, **kwargs: Any
                            ) -> dict[str, Any]:
    """``calibration`` of ``Trace.confidence`` against ``Trace.correct`` (None in either → ``n_missing``).

    ``unparsed_as_wrong=True`` counts a trace whose final answer is unparseable as wrong, as accuracy does
    (the eval report and ``analyze`` use it), instead of leaving it out: a confident unreadable answer is a
    calibration failure. A parseable answer without a gold verdict stays missing."""
    traces = list(traces)
    correct = [False if unparsed_as_wrong and t.final_answer is None else t.correct for t in traces]
    return calibration([t.confidence for t in traces], correct, **kwargs)


def reliability_diagram(confidences: Sequence[float], correct: Sequence[bool], *,
                        bins: int = 10) -> list[dict[str, Any]]:
    """Per equal-width bin: ``lo``, ``hi``, ``count``, ``mean_confidence``, ``accuracy`` (None if empty)."""
    conf, corr = _strict(confidences, correct)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    members: list[list[int]] = [[] for _ in range(bins)]
    for i, c in enumerate(conf):
        members[_bin_index(c, bins)].append(i)
    out = []
    for k, idx in enumerate(members):
        out.append({
            "lo": k / bins, "hi": (k + 1) / bins, "count": len(idx),
            "mean_confidence": math.fsum(conf[i] for i in idx) / len(idx) if idx else None,
            "accuracy": sum(corr[i] for i in idx) / len(idx) if idx else None,
        })
    return out


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], *,
                               bins: int = 10) -> float | None:
    """ECE = Σ_b (n_b/n)·|acc_b − conf_b| over equal-width bins; None for no samples."""
    diagram = reliability_diagram(confidences, correct, bins=bins)
    n = sum(b["count"] for b in diagram)
    if n == 0:
        return None
    return math.fsum(b["count"] / n * abs(b["accuracy"] - b["mean_confidence"])
                     for b in diagram if b["count"])


def brier_score(confidences: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Mean squared error of the confidence as a probability of being correct; None for no samples."""
    conf, corr = _strict(confidences, correct)
    if not conf:
        return None
    return math.fsum((c - float(y)) ** 2 for c, y in zip(conf, corr)) / len(conf)


def auroc(confidences: Sequence[float], correct: Sequence[bool]) -> float | None:
    """P(confidence of a correct sample > that of a wrong one), ties ½; None unless both classes occur
    (``stats.auroc`` on validated probabilities)."""
    conf, corr = _strict(confidences, correct)
    return stats.auroc(conf, corr)


def selective_accuracy(confidences: Sequence[float], correct: Sequence[bool], *,
                       coverages: Sequence[float] = DEFAULT_COVERAGES) -> list[dict[str, Any]]:
    """Accuracy on the ⌈c·n⌉ most confident samples, per coverage c in (0, 1].

    Each entry: ``coverage`` (asked), ``kept``, ``threshold`` (the lowest kept confidence) and ``accuracy``
    (ties at the threshold contribute their expected accuracy; None when n is 0).
    """
    conf, corr = _strict(confidences, correct)
    curve = _accuracy_at_every_k(conf, corr)
    ordered = sorted(conf, reverse=True)
    out = []
    for c in coverages:
        if not 0.0 < c <= 1.0:
            raise ValueError(f"coverage must be in (0, 1], got {c}")
        k = math.ceil(c * len(conf) - 1e-9)  # the tolerance keeps 0.3·10 from becoming 4
        k = max(k, 1) if conf else 0
        out.append({"coverage": c, "kept": k, "threshold": ordered[k - 1] if k else None,
                    "accuracy": curve[k - 1] if k else None})
    return out


def area_under_accuracy_coverage(confidences: Sequence[float], correct: Sequence[bool]) -> float | None:
    """AUACC = (1/n) Σ_{k=1..n} accuracy of the k most confident samples (ties averaged); None for n = 0."""
    conf, corr = _strict(confidences, correct)
    curve = _accuracy_at_every_k(conf, corr)
    return math.fsum(curve) / len(curve) if curve else None


def _accuracy_at_every_k(conf: Sequence[float], corr: Sequence[bool]) -> list[float]:
    """Selective accuracy keeping the k most confident, k = 1..n, splitting ties by expectation."""
    groups: dict[float, list[int]] = {}
    for c, y in zip(conf, corr):
        g = groups.setdefault(c, [0, 0])
        g[0] += 1
        g[1] += int(y)
    curve: list[float] = []
    kept = kept_correct = 0
    for c in sorted(groups, reverse=True):
        size, right = groups[c]
        for j in range(1, size + 1):  # j of the tied group kept: expect j·right/size of them correct
            curve.append((kept_correct + j * right / size) / (kept + j))
        kept += size
        kept_correct += right
    return curve


def _bin_index(c: float, bins: int) -> int:
    k = min(int(c * bins), bins - 1)
    # c·B is rounded: compare c with the float edges themselves so the bin agrees with lo <= c < hi
    if k + 1 < bins and (k + 1) / bins <= c:
        k += 1
    elif k > 0 and k / bins > c:
        k -= 1
    return k


def _clean(confidences: Sequence[float | None], correct: Sequence[bool | None]):
    """Drop pairs with a None (counted); validate what remains."""
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} correctness values")
    pairs = [(c, y) for c, y in zip(confidences, correct) if c is not None and y is not None]
    conf, corr = _strict([c for c, _ in pairs], [y for _, y in pairs])
    return conf, corr, len(confidences) - len(pairs)


def _strict(confidences: Sequence[float], correct: Sequence[bool]) -> tuple[list[float], list[bool]]:
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} correctness values")
    if any(c is None for c in confidences) or any(y is None for y in correct):
        raise ValueError("None confidence or correctness: use calibration(), which counts them as n_missing")
    conf = [float(c) for c in confidences]
    for i, c in enumerate(conf):
        if not 0.0 <= c <= 1.0:  # also rejects NaN
            raise ValueError(f"confidence #{i} is {c}; confidences must be probabilities in [0, 1]")
    corr = [bool(y) for y in correct]
    return conf, corr
