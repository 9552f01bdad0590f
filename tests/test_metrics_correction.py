"""Correction metrics (Confidence v.s. Critique, METHODS §3.1) against hand-computed cases."""

from __future__ import annotations

import pytest

from selfimprove.metrics.correction import correction, correction_from_traces, relative_self_correction_score
from selfimprove.records import Trace

T, F = True, False


def _rows(spec):
    """[(id, initial, final), ...] -> three parallel lists."""
    return [r[0] for r in spec], [r[1] for r in spec], [r[2] for r in spec]


def test_one_sample_per_question_matches_the_count_recipe():
    # 10 questions, one sample each: cc=4, cw=2, wc=3, ww=1
    spec = ([(f"q{i}", T, T) for i in range(4)] + [(f"q{i}", T, F) for i in range(4, 6)]
            + [(f"q{i}", F, T) for i in range(6, 9)] + [("q9", F, F)])
    m = correction(*_rows(spec))
    assert m["transitions"] == {"cc": 4, "cw": 2, "wc": 3, "ww": 1}
    assert m["n"] == 10 and m["n_questions"] == 10 and m["undecided"] == 0
    assert m["acc1"] == pytest.approx(0.6)     # (4 + 2) / 10
    assert m["acc2"] == pytest.approx(0.7)     # (4 + 3) / 10
    assert m["delta"] == pytest.approx(0.1)    # (wc − cw) / N = (3 − 2) / 10
    assert m["cl"] == pytest.approx(4 / 6)     # cc / (cc + cw)
    assert m["cs"] == pytest.approx(0.75)      # wc / (wc + ww) = 3 / 4
    # identity Acc2 = Acc1·CL + (1 − Acc1)·CS: 0.6·2/3 + 0.4·0.75 = 0.4 + 0.3 = 0.7
    assert m["acc1"] * m["cl"] + (1 - m["acc1"]) * m["cs"] == pytest.approx(m["acc2"])
    assert m["rss"] == pytest.approx(0.34 / 0.48)  # (0.7 − 0.36) / (2·0.6·0.4)
    assert m["transition_rates"] == pytest.approx({"cc": 0.4, "cw": 0.2, "wc": 0.3, "ww": 0.1})
    assert "changed_answer_rate" not in m  # no answers given


def test_several_samples_per_question_use_per_question_probabilities():
    # q1 (2 samples): T→T, T→F          P(a)=1,   p_cc=1/2, p_cw=1/2
    # q2 (4 samples): F→T, F→F, F→F, T→T  P(a)=1/4, p_cc=1/4, p_wc=1/4, p_ww=1/2
    spec = [("q1", T, T), ("q1", T, F), ("q2", F, T), ("q2", F, F), ("q2", F, F), ("q2", T, T)]
    m = correction(*_rows(spec))
    assert m["n_questions"] == 2 and m["n"] == 6
    assert m["transitions"] == {"cc": 2, "cw": 1, "wc": 1, "ww": 2}
    assert m["acc1"] == pytest.approx(0.625)   # (1 + 1/4) / 2
    assert m["acc2"] == pytest.approx(0.5)     # (1/2 + 1/2) / 2
    assert m["delta"] == pytest.approx(-0.125)
    # CL = Σ p_cc / Σ P(a) = (1/2 + 1/4) / (1 + 1/4) = 0.6 (pooled counts would give 2/3: weighting matters)
    assert m["cl"] == pytest.approx(0.6)
    # CS = Σ p_wc / Σ (1 − P(a)) = (0 + 1/4) / (0 + 3/4) = 1/3
    assert m["cs"] == pytest.approx(1 / 3)
    # identity: 0.625·0.6 + 0.375·(1/3) = 0.375 + 0.125 = 0.5
    assert m["acc1"] * m["cl"] + (1 - m["acc1"]) * m["cs"] == pytest.approx(m["acc2"])
    # RSS = (0.5 − 0.625²) / (2·0.625·0.375) = (7/64) / (30/64) = 7/30
    assert m["rss"] == pytest.approx(7 / 30)
    # per-question means: cc (1/2+1/4)/2, cw (1/2+0)/2, wc (0+1/4)/2, ww (0+1/2)/2
    assert m["transition_rates"] == pytest.approx({"cc": 3 / 8, "cw": 1 / 4, "wc": 1 / 8, "ww": 1 / 4})
    assert m["samples_per_question"] == {"min": 2, "max": 4, "mean": 3}


def test_undecided_samples_are_counted_not_scored():
    spec = [("q1", T, T), ("q1", T, F), ("q1", T, None),          # one undecided sample in q1
            ("q2", F, T), ("q2", F, F), ("q2", F, F), ("q2", T, T),
            ("q3", None, T), ("q3", F, None)]                     # q3: every sample undecided
    m = correction(*_rows(spec))
    assert m["undecided"] == 3 and m["questions_undecided"] == 1
    assert m["n"] == 6 and m["n_questions"] == 2
    assert m["cl"] == pytest.approx(0.6) and m["cs"] == pytest.approx(1 / 3)  # as in the case above


def test_degenerate_cases_give_none_not_zero():
    all_right = correction(["a", "b"], [T, T], [T, F])
    assert all_right["acc1"] == 1.0 and all_right["cl"] == pytest.approx(0.5)
    assert all_right["cs"] is None and all_right["rss"] is None   # no wrong initial answer to critique
    all_wrong = correction(["a", "b"], [F, F], [T, F])
    assert all_wrong["cl"] is None and all_wrong["cs"] == pytest.approx(0.5) and all_wrong["rss"] is None
    empty = correction([], [], [])
    assert empty["n"] == 0 and empty["acc1"] is None and empty["delta"] is None and empty["cl"] is None
    assert empty["transitions"] == {"cc": 0, "cw": 0, "wc": 0, "ww": 0}
    only_undecided = correction(["a"], [None], [T])
    assert only_undecided["undecided"] == 1 and only_undecided["acc2"] is None


def test_rss_reference_points():
    # keeping every answer: Acc2 = Acc1 → (A − A²) / (2A(1 − A)) = 1/2
    assert relative_self_correction_score(0.6, 0.6) == pytest.approx(0.5)
    # perfect correction at Acc1 = 0.5: (1 − 0.25) / (2·0.25) = 1.5
    assert relative_self_correction_score(0.5, 1.0) == pytest.approx(1.5)
    assert relative_self_correction_score(0.0, 0.3) is None
    assert relative_self_correction_score(1.0, 0.3) is None


def test_changed_answer_rate_counts_unparseable_pairs_apart():
    ids = ["a", "b", "c", "d", "e"]
    initial, final = [T, T, F, F, None], [T, F, T, T, T]
    # "1"→"1" same; "1"→"2" changed; None→"3" unparseable; "4"→"5" changed; e is undecided (not counted)
    m = correction(ids, initial, final, initial_answers=["1", "1", None, "4", "6"],
                   final_answers=["1", "2", "3", "5", "7"])
    assert m["changed_answers"] == 2 and m["answer_pairs"] == 3 and m["answer_pairs_missing"] == 1
    assert m["changed_answer_rate"] == pytest.approx(2 / 3)


def test_bad_lengths_raise():
    with pytest.raises(ValueError, match="final_correct has 1 entries"):
        correction(["a", "b"], [T, F], [T])
    with pytest.raises(ValueError, match="together"):
        correction(["a"], [T], [T], initial_answers=["1"])


def test_from_traces_uses_initial_correct_and_correct():
    traces = [
        Trace("a", "refine", initial_answer="1", final_answer="1", initial_correct=T, correct=T),
        Trace("a", "refine", initial_answer="2", final_answer="1", initial_correct=F, correct=T),
        Trace("b", "refine", initial_answer="3", final_answer="4", initial_correct=T, correct=F),
        Trace("c", "refine", initial_answer=None, final_answer="5", initial_correct=None, correct=F),
    ]
    m = correction_from_traces(traces)
    assert m["strategy"] == "refine" and m["undecided"] == 1 and m["questions_undecided"] == 1
    # a: p_cc=1/2, p_wc=1/2 (P(a)=1/2); b: p_cw=1 (P(a)=1)
    assert m["acc1"] == pytest.approx(0.75)          # (1/2 + 1) / 2
    assert m["acc2"] == pytest.approx(0.5)           # (1 + 0) / 2
    assert m["cl"] == pytest.approx((0.5 + 0) / 1.5)  # Σ p_cc / Σ P(a) = 1/3
    assert m["cs"] == pytest.approx(1.0)              # Σ p_wc / Σ (1 − P(a)) = (1/2) / (1/2)
    assert m["changed_answers"] == 2 and m["answer_pairs"] == 3
    with pytest.raises(ValueError, match="mix strategies"):
        correction_from_traces(traces + [Trace("d", "greedy", initial_correct=T, correct=T)])


def test_from_traces_can_count_unparsed_answers_as_wrong():
    # a review that turns answers into unreadable text: undecided by default, c→w / w→w when counted as wrong
    traces = [
        Trace("a", "self-correct", initial_answer="1", final_answer=None, initial_correct=T, correct=None),
        Trace("b", "self-correct", initial_answer="1", final_answer=None, initial_correct=T, correct=None),
        Trace("c", "self-correct", initial_answer="2", final_answer=None, initial_correct=F, correct=None),
        Trace("d", "self-correct", initial_answer="2", final_answer="1", initial_correct=F, correct=T),
        Trace("e", "self-correct", initial_answer="3", final_answer="3", initial_correct=None, correct=None),
    ]
    default = correction_from_traces(traces)
    assert default["undecided"] == 4 and default["transitions"] == {"cc": 0, "cw": 0, "wc": 1, "ww": 0}
    assert default["unparsed_final"] == 3 and default["unparsed_initial"] == 0
    m = correction_from_traces(traces, unparsed_as_wrong=True)
    # e has no gold verdict and parseable answers: it stays undecided
    assert m["undecided"] == 1 and m["transitions"] == {"cc": 0, "cw": 2, "wc": 1, "ww": 1}
    assert m["acc1"] == pytest.approx(0.5) and m["acc2"] == pytest.approx(0.25)
    assert m["cl"] == 0.0 and m["cs"] == pytest.approx(0.5)
    assert m["rss"] == pytest.approx((0.25 - 0.25) / (2 * 0.5 * 0.5))


def test_identity_holds_on_random_uneven_samples():
    # Acc2 = Acc1·CL + (1 − Acc1)·CS is exact under per-question weighting, whatever the sample counts
    import random
    rng = random.Random(0)
    ids, a, b = [], [], []
    for q in range(30):
        for _ in range(rng.randint(1, 6)):
            ids.append(q)
            a.append(rng.random() < 0.6)
            b.append(rng.random() < 0.7)
    m = correction(ids, a, b)
    assert m["acc1"] * m["cl"] + (1 - m["acc1"]) * m["cs"] == pytest.approx(m["acc2"])
    assert sum(m["transition_rates"].values()) == pytest.approx(1.0)
