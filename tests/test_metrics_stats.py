"""Paired statistics: exact McNemar and paired bootstrap, against hand-computed values."""

from __future__ import annotations

import math

import pytest

from selfimprove.metrics.stats import correct_by_id, exact_binomial_two_sided, mcnemar_exact, paired_bootstrap
from selfimprove.records import Trace

T, F = True, False


def _paired(both_right, a_only, b_only, both_wrong, undecided=0):
    a, b, i = {}, {}, 0
    for n, x, y in ((both_right, T, T), (a_only, T, F), (b_only, F, T), (both_wrong, F, F),
                    (undecided, None, T)):
        for _ in range(n):
            a[f"e{i}"], b[f"e{i}"] = x, y
            i += 1
    return a, b


def test_mcnemar_known_exact_p_value():
    a, b = _paired(both_right=5, a_only=1, b_only=9, both_wrong=3, undecided=1)
    m = mcnemar_exact(a, b)
    assert (m["a_only"], m["b_only"], m["both_correct"], m["both_wrong"]) == (1, 9, 5, 3)
    assert m["n"] == 18 and m["n_undecided"] == 1
    # p = 2·(C(10,0) + C(10,1)) / 2^10 = 2·11/1024
    assert m["p_value"] == 0.021484375
    assert m["acc_a"] == pytest.approx(6 / 18) and m["acc_b"] == pytest.approx(14 / 18)
    assert m["diff"] == pytest.approx(8 / 18)
    assert mcnemar_exact(b, a)["p_value"] == 0.021484375  # symmetric


def test_exact_binomial_values():
    assert exact_binomial_two_sided(2, 10) == 158 / 4096    # 2·(1 + 12 + 66) / 2^12
    assert exact_binomial_two_sided(0, 5) == 0.0625          # 2·1 / 32
    assert exact_binomial_two_sided(3, 3) == 1.0             # 2·42/64 > 1, capped
    assert exact_binomial_two_sided(0, 0) == 1.0             # no discordant pairs
    # large m stays exact: 2·P(X ≤ 400 | m=1000) is a tiny positive number, not 0 or an overflow
    assert 0.0 < exact_binomial_two_sided(400, 600) < 1e-9


def test_mismatched_ids_are_named():
    with pytest.raises(ValueError, match=r"missing from b: 'x'"):
        mcnemar_exact({"x": T, "y": F}, {"y": F})
    with pytest.raises(ValueError, match=r"missing from a: 'z'"):
        paired_bootstrap({"y": F}, {"y": F, "z": T})


def test_bootstrap_is_seeded_and_sensible():
    # 100 pairs: 30 favour B (+1), 10 favour A (−1), 60 agree (0) → diff = 0.2
    a, b = _paired(both_right=40, a_only=10, b_only=30, both_wrong=20)
    m = paired_bootstrap(a, b)
    assert m["n"] == 100 and m["n_resamples"] == 10_000 and m["seed"] == 0 and m["method"] == "percentile"
    assert m["diff"] == pytest.approx(0.2) and m["acc_a"] == 0.5 and m["acc_b"] == 0.7
    assert m == paired_bootstrap(a, b)                       # same seed, same interval
    # normal approximation: var(d) = E[d²] − 0.2² = 0.4 − 0.04 = 0.36, se = 0.6/√100 = 0.06,
    # 95 % CI ≈ 0.2 ± 1.96·0.06 = [0.0824, 0.3176]; the percentile bootstrap lands within 0.02
    se = math.sqrt(0.36 / 100)
    assert m["ci_low"] == pytest.approx(0.2 - 1.96 * se, abs=0.02)
    assert m["ci_high"] == pytest.approx(0.2 + 1.96 * se, abs=0.02)


def test_bootstrap_degenerate_cases():
    a, b = _paired(both_right=3, a_only=0, b_only=0, both_wrong=2)
    m = paired_bootstrap(a, b, n_resamples=100)
    assert (m["diff"], m["ci_low"], m["ci_high"]) == (0.0, 0.0, 0.0)  # no discordant pair can be drawn
    a, b = _paired(both_right=0, a_only=0, b_only=4, both_wrong=0)
    m = paired_bootstrap(a, b, n_resamples=100)
    assert (m["diff"], m["ci_low"], m["ci_high"]) == (1.0, 1.0, 1.0)
    empty = paired_bootstrap({"x": None}, {"x": T})
    assert empty["n"] == 0 and empty["n_undecided"] == 1 and empty["ci_low"] is None
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap({}, {}, confidence=95)


def test_correct_by_id_from_traces():
    """The paired tests' outcome is the accuracy's: an unparseable answer (correct None) is wrong, and only a
    failed request is None (left out of the pairs and counted)."""
    traces = [Trace("a", "s", correct=T), Trace("b", "s", correct=None),
              Trace("c", "s", correct=None, status="error")]
    assert correct_by_id(traces) == {"a": T, "b": F, "c": None}
    other = correct_by_id([Trace("a", "s", correct=F), Trace("b", "s", correct=T),
                           Trace("c", "s", correct=T)])
    mc = mcnemar_exact(correct_by_id(traces), other)
    assert (mc["n"], mc["n_undecided"], mc["a_only"], mc["b_only"]) == (2, 1, 1, 1)
    with pytest.raises(ValueError, match="more than one trace"):
        correct_by_id(traces + [Trace("a", "s", correct=F)])
