import math

import pytest

from selfimprove.metrics.accuracy import accuracy, maj_at_k, pass_at_k
from selfimprove.metrics.stats import bootstrap_ci
from selfimprove.records import Trace


def test_pass_at_k_hand_values():
    # n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0          # n - c < k
    assert pass_at_k(10, 1, 1) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_maj_at_k():
    answers = ["1", "1", "2", None]
    check = lambda a: a == "1"
    assert maj_at_k(answers, check, k=4) == 1.0
    # k=1: a uniformly random single sample is right with probability 2/4; 64 seeded subsets estimate it
    assert abs(maj_at_k(answers, check, k=1, subsets=2000) - 0.5) < 0.05
    assert maj_at_k([None, None], check, k=2) == 0.0


def test_accuracy_counts_unparsed_in_denominator():
    traces = [Trace("a", "g", final_answer="1", correct=True),
              Trace("b", "g", final_answer=None, correct=None),
              Trace("c", "g", final_answer="3", correct=False),
              Trace("d", "g", final_answer="4", correct=True)]
    m = accuracy(traces)
    assert (m["n"], m["correct"], m["accuracy"], m["unparsed"], m["undecided"]) == (4, 2, 0.5, 1, 1)
    lo, hi = m["ci95"]
    assert 0 <= lo < 0.5 < hi <= 1


def test_bootstrap_ci_shrinks_with_n():
    small = bootstrap_ci([1, 0] * 10)
    large = bootstrap_ci([1, 0] * 500)
    assert small[1] - small[0] > large[1] - large[0]
    # normal approximation for n=1000, p=0.5: ±1.96·sqrt(.25/1000) = ±0.031
    assert math.isclose(large[1] - large[0], 2 * 0.031, abs_tol=0.01)
    assert bootstrap_ci([]) is None
