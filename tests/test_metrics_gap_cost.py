"""Generation–verification gap (METHODS §3.3) and cost accounting (§3.10) against hand-computed cases."""

from __future__ import annotations

import pytest

from selfimprove.metrics.cost import accuracy_vs_tokens, cost_by_strategy, cost_summary
from selfimprove.metrics.gap import gap_from_traces, generation_verification_gap
from selfimprove.records import Example, Step, Trace

T, F = True, False

# (question, correct, self-verification score)
SAMPLES = [
    ("q1", T, 0.9), ("q1", F, 0.2), ("q1", F, 0.1), ("q1", None, 0.99),  # p = 1/3; top-1 (0.9) right
    ("q2", F, 0.3), ("q2", T, 0.5),                                      # p = 1/2; top-1 (0.5) right
    ("q3", T, 0.7), ("q3", F, 0.7), ("q3", T, 0.1),                      # p = 2/3; top-1 tie → 1/2
    ("q4", None, 0.5),                                                   # undecided question
    ("q5", T, None), ("q5", F, None),                                    # nothing scored: no selection
]


def _gap(**kwargs):
    return generation_verification_gap([s[0] for s in SAMPLES], [s[1] for s in SAMPLES],
                                       [s[2] for s in SAMPLES], **kwargs)


def test_top1_gap():
    m = _gap()
    assert m["selection"] == "top1" and m["n_questions"] == 3
    assert m["n"] == 10 and m["n_undecided"] == 2 and m["n_unscored"] == 2
    assert m["questions_undecided"] == 1 and m["questions_no_selection"] == 1
    assert m["mean_sample_accuracy"] == pytest.approx(0.5)   # (1/3 + 1/2 + 2/3) / 3
    assert m["selected_accuracy"] == pytest.approx(5 / 6)    # (1 + 1 + 1/2) / 3
    assert m["gap"] == pytest.approx(1 / 3)                  # 5/6 − 1/2
    assert m["relative_gap"] == pytest.approx(2 / 3)         # (1/3) / (1 − 1/2)


def test_threshold_gap():
    m = _gap(threshold=0.6)
    # q1 keeps {0.9 T} → 1; q2 keeps nothing; q3 keeps {0.7 T, 0.7 F} → 1/2; q5 unscored
    assert m["n_questions"] == 2 and m["questions_no_selection"] == 2
    assert m["mean_sample_accuracy"] == pytest.approx(0.5)   # (1/3 + 2/3) / 2 over q1, q3
    assert m["selected_accuracy"] == pytest.approx(0.75)     # (1 + 1/2) / 2
    assert m["gap"] == pytest.approx(0.25)
    assert m["relative_gap"] == pytest.approx(0.5)           # 0.25 / 0.5


def test_gap_edges():
    perfect = generation_verification_gap(["a", "a"], [T, T], [0.1, 0.9])
    assert perfect["gap"] == 0.0 and perfect["relative_gap"] is None  # 1 − mean accuracy = 0
    empty = generation_verification_gap([], [], [])
    assert empty["gap"] is None and empty["n_questions"] == 0
    with pytest.raises(ValueError, match="one entry per sample"):
        generation_verification_gap(["a"], [T, F], [0.1])


class _Gold:
    def check(self, example, answer):
        return None if answer is None or example.answer is None else answer == example.answer


def test_gap_from_best_of_n_traces():
    examples = [Example("a", "q", answer="1"), Example("b", "q", answer="2"), Example("c", "q", answer=None)]
    traces = [  # the pool is the first generate step; info['scores'] one score per sample (None: unscored)
        Trace("a", "best-of-n", steps=(Step("generate", answers=("1", "5", None)),),
              info={"scores": [0.4, 0.9, None]}),
        Trace("b", "best-of-n", steps=(Step("generate", answers=("2", "3")),), info={"scores": [0.8, 0.3]}),
        Trace("c", "best-of-n", steps=(Step("generate", answers=("7", "8")),), info={"scores": [0.6, 0.2]}),
    ]
    m = gap_from_traces(_Gold(), examples, traces)
    # a: the unparseable sample counts as wrong (gold exists) → p = 1/3, top score 0.9 is wrong → s = 0;
    # b: p = 1/2, top score 0.8 is right → s = 1; c has no gold: undecided
    assert m["n_questions"] == 2 and m["questions_undecided"] == 1 and m["n_undecided"] == 2
    assert m["n_unscored"] == 1
    assert m["mean_sample_accuracy"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert m["selected_accuracy"] == pytest.approx(0.5)
    assert m["gap"] == pytest.approx(0.5 - 5 / 12)
    # scored and decided samples: (0.4 T) (0.9 F) (0.8 T) (0.3 F); right above wrong in 2 of 4 pairs
    cal = m["sample_calibration"]
    assert cal["n"] == 4 and cal["n_missing"] == 3 and cal["auroc"] == pytest.approx(0.5)
    assert cal["brier"] == pytest.approx((0.6 ** 2 + 0.9 ** 2 + 0.2 ** 2 + 0.3 ** 2) / 4)
    assert gap_from_traces(_Gold(), examples, [Trace("a", "greedy")]) is None


def _t(eid, strategy, prompt, completion, calls, correct, status="ok"):
    return Trace(eid, strategy, prompt_tokens=prompt, completion_tokens=completion, calls=calls,
                 correct=correct, status=status)


GREEDY = [_t("a", "greedy", 10, 5, 1, T), _t("b", "greedy", 20, 15, 1, F),
          _t("c", "greedy", 30, 0, 1, None, status="error")]
SC4 = [_t("a", "sc:n=4", 40, 60, 4, T), _t("b", "sc:n=4", 40, 40, 4, T)]


def test_cost_summary():
    m = cost_summary(GREEDY)
    assert m["n"] == 3 and m["n_error"] == 1 and m["n_undecided"] == 1
    assert m["accuracy"] == pytest.approx(0.5)                 # 1 right of 2 decided
    assert m["calls_total"] == 3 and m["calls_mean"] == 1
    assert m["prompt_tokens_total"] == 60 and m["prompt_tokens_mean"] == 20
    assert m["completion_tokens_total"] == 20 and m["completion_tokens_mean"] == pytest.approx(20 / 3)
    assert m["tokens_total"] == 80 and m["tokens_mean"] == pytest.approx(80 / 3)
    assert m["accuracy_per_1k_tokens"] == pytest.approx(18.75)  # 0.5 / (80/3 / 1000) = 1500 / 80


def test_cost_by_strategy_and_curve():
    by = cost_by_strategy(GREEDY + SC4)
    assert list(by) == ["greedy", "sc:n=4"]
    assert by["sc:n=4"]["tokens_mean"] == 90 and by["sc:n=4"]["calls_mean"] == 4  # (100 + 80) / 2
    assert by["sc:n=4"]["accuracy_per_1k_tokens"] == pytest.approx(1 / 0.09)
    curve = accuracy_vs_tokens({4: SC4, 1: GREEDY, 16: []})
    assert [p["budget"] for p in curve] == [1, 4, 16]  # by mean tokens: 26.7, 90, none
    assert curve[1]["accuracy"] == 1.0 and curve[2]["tokens_mean"] is None and curve[2]["accuracy"] is None
