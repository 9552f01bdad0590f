"""Calibration metrics (METHODS §3.6) against hand-computed cases."""

from __future__ import annotations

import pytest

from selfimprove.metrics.calibration import (
    auroc,
    brier_score,
    calibration,
    calibration_from_traces,
    expected_calibration_error,
    reliability_diagram,
    selective_accuracy,
)
from selfimprove.records import Trace

T, F = True, False
CONF = [0.95, 0.85, 0.85, 0.35, 0.15]
CORR = [T, T, F, T, F]


def test_hand_computed_case_with_missing_rows():
    m = calibration(CONF + [None, 0.5], CORR + [T, None])
    assert m["n"] == 5 and m["n_missing"] == 2
    assert m["accuracy"] == pytest.approx(0.6)            # 3 / 5
    assert m["mean_confidence"] == pytest.approx(0.63)    # 3.15 / 5
    # bins of width 0.1: [0.9,1]: {0.95 T} → |1 − 0.95| = 0.05
    #                    [0.8,0.9): {0.85 T, 0.85 F} → |0.5 − 0.85| = 0.35
    #                    [0.3,0.4): {0.35 T} → 0.65;           [0.1,0.2): {0.15 F} → 0.15
    # ECE = (1·0.05 + 2·0.35 + 1·0.65 + 1·0.15) / 5 = 1.55 / 5
    assert m["ece"] == pytest.approx(0.31)
    # Brier = (0.05² + 0.15² + 0.85² + 0.65² + 0.15²) / 5
    #       = (0.0025 + 0.0225 + 0.7225 + 0.4225 + 0.0225) / 5 = 1.1925 / 5
    assert m["brier"] == pytest.approx(0.2385)
    # AUROC: pos {0.95, 0.85, 0.35} vs neg {0.85, 0.15}: pairs 1+1 + 0.5+1 + 0+1 = 4.5 of 6
    assert m["auroc"] == pytest.approx(0.75)
    # selective accuracy at k = 1..5 (the two 0.85s tied: expected accuracy 1/2 each):
    # k=1: 1; k=2: (1 + 1/2)/2 = 0.75; k=3: 2/3; k=4: 3/4; k=5: 3/5
    assert [s["accuracy"] for s in m["selective"]] == pytest.approx([1.0, 0.75, 2 / 3, 0.75, 0.6])
    assert [s["kept"] for s in m["selective"]] == [1, 2, 3, 4, 5]
    assert m["selective"][1]["threshold"] == 0.85
    # AUACC = (1 + 3/4 + 2/3 + 3/4 + 3/5) / 5 = (226/60) / 5 = 113/150
    assert m["auacc"] == pytest.approx(113 / 150)
    assert m["bins"] == 10 and len(m["reliability"]) == 10
    assert m["reliability"][8] == pytest.approx({"lo": 0.8, "hi": 0.9, "count": 2,
                                                 "mean_confidence": 0.85, "accuracy": 0.5})
    assert m["reliability"][0] == {"lo": 0.0, "hi": 0.1, "count": 0,
                                   "mean_confidence": None, "accuracy": None}


def test_two_bins():
    # [0, 0.5): {0.35 T, 0.15 F} mean 0.25, acc 0.5 → 0.25;  [0.5, 1]: mean 2.65/3, acc 2/3 → (2.65 − 2)/3
    # ECE = (2·0.25 + 3·0.65/3) / 5 = 1.15 / 5
    assert expected_calibration_error(CONF, CORR, bins=2) == pytest.approx(0.23)


def test_components_and_order_independence():
    assert brier_score(CONF, CORR) == pytest.approx(0.2385)
    assert auroc(CONF, CORR) == pytest.approx(0.75)
    shuffled = [4, 2, 0, 3, 1]  # tied 0.85s swapped relative order: selective accuracy must not change
    conf2, corr2 = [CONF[i] for i in shuffled], [CORR[i] for i in shuffled]
    assert selective_accuracy(conf2, corr2) == selective_accuracy(CONF, CORR)
    assert auroc(conf2, corr2) == pytest.approx(0.75)


def test_auroc_edges():
    assert auroc([0.9, 0.8], [T, T]) is None        # one class only
    assert auroc([0.9, 0.1], [T, F]) == 1.0
    assert auroc([0.1, 0.9], [T, F]) == 0.0
    assert auroc([0.5, 0.5, 0.5], [T, F, F]) == 0.5  # all tied


def test_bin_edges():
    diagram = reliability_diagram([0.0, 1.0, 0.1, 0.3], [T, T, F, F])
    counts = [b["count"] for b in diagram]
    # 0.0 → first bin, 0.1 → [0.1, 0.2), 0.3 → [0.3, 0.4), 1.0 → last bin (closed at 1)
    assert counts == [1, 1, 0, 1, 0, 0, 0, 0, 0, 1]
    # 0.57·100 = 56.99999999999999 in floating point; the bin still follows lo <= c < hi
    assert reliability_diagram([0.57], [T], bins=100)[57]["count"] == 1


def test_empty_and_invalid():
    m = calibration([None], [T])
    assert m["n"] == 0 and m["n_missing"] == 1 and m["ece"] is None and m["brier"] is None
    assert m["auroc"] is None and m["selective"][0]["accuracy"] is None
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibration([1.5], [T])
    with pytest.raises(ValueError, match="bins"):
        calibration([0.5], [T], bins=0)
    with pytest.raises(ValueError, match="n_missing"):
        brier_score([None], [T])
    with pytest.raises(ValueError, match="coverage"):
        selective_accuracy([0.5], [T], coverages=[0.0])


def test_from_traces():
    traces = [Trace("a", "s", confidence=0.9, correct=T), Trace("b", "s", confidence=0.2, correct=F),
              Trace("c", "s", confidence=None, correct=T)]
    m = calibration_from_traces(traces)
    assert m["n"] == 2 and m["n_missing"] == 1
    assert m["brier"] == pytest.approx((0.01 + 0.04) / 2)  # (0.9 − 1)² and (0.2 − 0)²


def test_auroc_matches_pair_counting_on_random_ties():
    import random
    rng = random.Random(1)
    conf = [rng.choice([0.1, 0.3, 0.5, 0.7, 0.9]) for _ in range(60)]
    corr = [rng.random() < c for c in conf]
    pos = [c for c, y in zip(conf, corr) if y]
    neg = [c for c, y in zip(conf, corr) if not y]
    # brute force: a correct/wrong pair scores 1 when ordered right, 1/2 when tied
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    assert auroc(conf, corr) == pytest.approx(wins / (len(pos) * len(neg)))
