"""Preference builders and guards on hand-made traces and numbers: exact pairs, weights, skips and rates."""

from __future__ import annotations

import pytest

from selfimprove.metrics import stats
from selfimprove.records import Completion, Step, Trace, Verdict
from selfimprove.training import guards
from selfimprove.training.preferences import (
    META_JUDGE,
    SELF_JUDGE,
    PreferencePair,
    Provenance,
    cct_rows,
    correctness_pairs,
    meta_judge_pairs,
    scpo_pairs,
    self_rewarding_pairs,
    spin_pairs,
)

PROV = Provenance(round_idx=2, model="round-1", seed=2002)


def c(text: str, finish: str = "stop") -> Completion:
    return Completion(text=text, finish_reason=finish)


def trace(ex: str, texts, answers, *, scores=None, correct=None, finish=None) -> Trace:
    finish = finish or ["stop"] * len(texts)
    verdicts = () if correct is None else tuple(Verdict(score=None, correct=v) for v in correct)
    steps = [Step(kind="generate", prompt=f"q{ex}:",
                  completions=tuple(c(t, f) for t, f in zip(texts, finish)),
                  answers=tuple(answers), verdicts=verdicts)]
    if scores is not None:
        steps.append(Step(kind=SELF_JUDGE, verdicts=tuple(Verdict(score=s, correct=None) for s in scores)))
    return Trace(example_id=ex, strategy="test", steps=tuple(steps))


def test_self_rewarding_highest_vs_lowest_ties_dropped_truncated_never_chosen():
    traces = [
        trace("a", ["s0", "s1", "s2", "s3", "s4", "s5"], ["1", "2", None, "2", "3", "9"],
              scores=[0.2, 0.9, None, 0.9, 0.1, 1.0], finish=["stop"] * 5 + ["length"]),
        trace("b", ["t0", "t1"], ["1", "2"], scores=[0.5, 0.5]),           # tie
        trace("c", ["u0", "u1"], ["1", "2"], scores=[0.7, None]),          # one scored
        trace("d", ["v0", "v1", "v2"], ["1", "1", "2"], scores=[0.3, 0.8, 0.6]),
    ]
    pairs, stats = self_rewarding_pairs(traces, judge="ptrue", prov=PROV, suffix="\n")
    assert [(p.example_id, p.chosen, p.rejected, p.chosen_score, p.rejected_score) for p in pairs] == [
        ("a", "s1\n", "s4\n", 0.9, 0.1), ("d", "v1\n", "v0\n", 0.8, 0.3)]
    p = pairs[0]
    assert (p.prompt, p.weight, p.method, p.judge, p.round_idx, p.model, p.seed) == (
        "qa:", 1.0, "self-rewarding", "self:ptrue", 2, "round-1", 2002)
    assert (p.chosen_answer, p.rejected_answer) == ("2", "3")
    assert stats == {"examples": 4, "pairs": 2, "examples_with_pairs": 2,
                     "skipped": {"tie": 1, "too_few_scored": 1}, "unscored": 2}
    assert PreferencePair.from_json(p.to_json()) == p
    assert p.trl() == {"prompt": "qa:", "chosen": "s1\n", "rejected": "s4\n", "weight": 1.0}
    assert self_rewarding_pairs(traces[:1], judge="x", min_gap=0.85)[0] == []  # 0.9 - 0.1 = 0.8 <= 0.85


def test_scpo_most_vs_least_voted_with_vote_margin_weights():
    traces = [
        trace("a", [f"a{i}" for i in range(8)], ["5", "5", "7", "5", "7", None, "9", "5"]),
        trace("b", ["b0", "b1", "b2", "b3"], ["1", "2", "1", "2"]),   # tied majority
        trace("c", ["c0", "c1"], ["4", "4"]),                         # unanimous
        trace("d", ["d0", "d1", "d2", "d3"], ["3", "3", "8", None],
              finish=["length", "stop", "stop", "stop"]),
        trace("e", ["e0", "e1", "e2", "e3"], [None, None, None, None]),
    ]
    pairs, stats = scpo_pairs(traces, prov=PROV)
    got = [(p.example_id, p.chosen, p.rejected, p.weight, p.chosen_score, p.rejected_score) for p in pairs]
    assert got == [("a", "a0", "a6", (4 - 1) / 8, 4.0, 1.0), ("d", "d1", "d2", (2 - 1) / 4, 2.0, 1.0)]
    assert pairs[0].judge == "majority-vote" and pairs[0].method == "scpo"
    assert stats["skipped"] == {"tied_majority": 1, "unanimous": 1, "no_parsed": 1}
    with_none, _ = scpo_pairs(traces, prov=PROV, include_unparseable=True)
    assert [(p.example_id, p.rejected, p.weight) for p in with_none] == [
        ("a", "a5", 4 / 8), ("d", "d3", 2 / 4)]
    strict, st = scpo_pairs(traces, threshold=0.6)
    assert strict == [] and st["skipped"]["below_threshold"] == 2
    equal_mod_10 = scpo_pairs([trace("f", ["f0", "f1", "f2"], ["12", "2", "5"])],
                              lambda x, y: int(x) % 10 == int(y) % 10)[0]
    assert [(p.chosen, p.rejected, p.weight) for p in equal_mod_10] == [("f0", "f2", 1 / 3)]


def test_spin_reference_vs_own_generation():
    traces = [trace("a", ["mine", "other"], ["1", "2"]), trace("b", ["ref-b"], ["2"]),
              trace("c", ["x"], ["3"]), trace("d", ["cut"], [None], finish=["length"])]
    refs = {"a": "ref-a", "b": "ref-b", "d": "ref-d"}
    pairs, stats = spin_pairs(traces, refs, prov=PROV, suffix="!")
    assert [(p.example_id, p.chosen, p.rejected, p.judge) for p in pairs] == [
        ("a", "ref-a!", "mine!", "reference"), ("d", "ref-d!", "cut!", "reference")]
    assert stats["skipped"] == {"identical": 1, "no_reference": 1}


def test_correctness_pairs_diagonal_order_cap_and_unparseable_as_wrong():
    t = trace("a", ["r0", "w0", "r1", "r0", "w1", "u"], ["1", "2", "1", "1", "3", None],
              correct=[True, False, True, True, False, None])
    pairs, _ = correctness_pairs([t], prov=PROV)
    assert [(p.chosen, p.rejected) for p in pairs] == [
        ("r0", "w0"), ("r1", "w0"), ("r0", "w1"), ("r1", "w1"), ("r0", "u"), ("r1", "u")]
    assert all(p.judge == "gold" and p.method == "v-star" for p in pairs)
    one, stats = correctness_pairs([t, trace("b", ["x"], ["1"], correct=[True])], method="gold-dpo",
                                   max_pairs_per_example=1)
    assert [(p.chosen, p.rejected, p.method) for p in one] == [("r0", "w0", "gold-dpo")]
    assert stats["skipped"] == {"no_incorrect": 1}
    strict, _ = correctness_pairs([t], unparseable_is_wrong=False)
    assert [(p.chosen, p.rejected) for p in strict] == [("r0", "w0"), ("r1", "w0"), ("r0", "w1"),
                                                        ("r1", "w1")]


def test_cct_confidence_and_critique_rows():
    t = trace("a", ["good", "bad", "good", "junk"], ["1", "2", "1", None], correct=[True, False, True, None])
    rows, stats = cct_rows([t, trace("z", ["x"], ["1"], correct=[True])], {"a": "gold-a"},
                           lambda ex, text: f"{ex}|{text} >", round_idx=3, suffix="\n")
    assert [(r.prompt, r.completion, r.source) for r in rows] == [
        ("qa:", "gold-a\n", "cct-solve"), ("a|good >", "good\n", "cct-confidence"),
        ("a|bad >", "gold-a\n", "cct-critique"), ("a|junk >", "gold-a\n", "cct-critique")]
    assert all(r.round_idx == 3 for r in rows)
    assert stats == {"examples": 2, "rows": 4, "skipped": {"no_reference": 1},
                     "rows_by_source": {"cct-solve": 1, "cct-confidence": 1, "cct-critique": 2}}
    capped, _ = cct_rows([t], {"a": "g"}, lambda ex, text: text, max_per_kind=1, solve_rows=False)
    assert [r.source for r in capped] == ["cct-confidence", "cct-critique"]
    # a task's own review format: every review row writes the example's review target (the right answer)
    own, _ = cct_rows([t], {"a": "gold-a"}, lambda ex, text: f"{text} !", suffix="\n",
                      review_targets={"a": " #1"})
    assert [(r.prompt, r.completion, r.source) for r in own] == [
        ("qa:", "gold-a\n", "cct-solve"), ("good !", " #1\n", "cct-confidence"),
        ("bad !", " #1\n", "cct-critique"),
        ("junk !", " #1\n", "cct-critique")]


def test_meta_judge_pairs():
    steps = [Step(kind="generate", prompt="q:"),
             Step(kind=META_JUDGE,
                  info={"prompt": "judge:", "judgements": ["j good", "j bad"], "preferred": 0}),
             Step(kind=META_JUDGE, info={"prompt": "judge2:", "judgements": ["x", "y"], "preferred": 1}),
             Step(kind=META_JUDGE, info={"prompt": "judge3:", "judgements": ["x", "y"], "preferred": None})]
    pairs, stats = meta_judge_pairs([Trace(example_id="a", strategy="t", steps=tuple(steps))], prov=PROV)
    assert [(p.prompt, p.chosen, p.rejected, p.judge) for p in pairs] == [
        ("judge:", "j good", "j bad", "self:meta-judge"), ("judge2:", "y", "x", "self:meta-judge")]
    assert stats["skipped"] == {"undecided": 1} and stats["meta_judgements"] == 3


# ---- guards ----------------------------------------------------------------------------------------------


def test_wilson_and_rates():
    lo, hi = stats.wilson_ci(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert stats.wilson_ci(0, 0) is None and stats.wilson_ci(0, 4)[0] == 0.0
    assert guards.rate(3, 4)["rate"] == 0.75


def test_judge_agreement_and_parse_failures():
    out = guards.judge_agreement([True, False, None, True, False], [True, True, False, None, False],
                                 scores=[0.9, 0.2, None, 0.8, 0.1])
    assert (out["rate"], out["successes"], out["n"]) == (2 / 3, 2, 3)
    assert (out["judge_undecided"], out["gold_undecided"]) == (1, 1)
    assert (out["accept_correct"], out["accept_wrong"]) == (0.5, 0.0)
    assert out["auroc"] == 1.0  # scored with gold: correct {0.9, 0.2} both above wrong {0.1}
    assert guards.failure_rate([1, None, "x", None]) == {"rate": 0.5, "failed": 2, "n": 4}


def test_auroc_hand_computed():
    assert stats.auroc([0.9, 0.2, 0.1], [True, True, False]) == 1.0
    assert stats.auroc([3, 1, 2, 2], [True, False, True, False]) == (1 + 1 + 1 + 0.5) / 4
    assert stats.auroc([1, 2], [True, True]) is None


def test_position_consistency_and_self_preference():
    pc = guards.position_consistency([(0, 0), (0, 1), (None, 1)])
    assert (pc["rate"], pc["n"], pc["unreadable"]) == (0.5, 2, 1)
    assert pc["first_position_rate"] == 4 / 5  # orders shown first won in 4 of 5 readable orders
    sp = guards.self_preference([0.9, 0.5, 0.4, None], [0.5, 0.5, 0.6, 0.3])
    assert (sp["preference"], sp["own_wins"], sp["ties"], sp["other_wins"],
            sp["unscored"]) == (0.5, 1, 1, 1, 1)
    assert sp["ci95"][0] <= 0.5 <= sp["ci95"][1]


def test_length_drift_exploration_collapse_and_injection():
    assert guards.length_drift([10, 20], 10.0) == {"mean": 15.0, "baseline": 10.0, "drift": 5.0,
                                                   "relative": 0.5, "n": 2}
    assert guards.length_drift([4, 6], None)["drift"] == 0.0
    pools = [[(True, 0.9, "5"), (False, 0.1, "6")],
             [(False, 0.8, "7"), (True, 0.2, "8"), (False, None, None)],
             [(False, None, None)]]
    ee = guards.exploration_exploitation(pools)
    assert ee["pools"] == 3 and ee["pass_at_k"] == 2 / 3 and ee["distinct_answers"] == (2 + 2 + 0) / 3
    assert ee["mean_sample_accuracy"] == pytest.approx((0.5 + 1 / 3 + 0) / 3)
    assert ee["reward_at_k"] == 0.5 and ee["scored_pools"] == 2
    assert ee["reward_gain"] == pytest.approx(0.5 - (0.5 + 0.5) / 2)
    assert ee["reward_auroc"] == pytest.approx((1 + 1 + 0 + 1) / 4)  # correct {0.9, 0.2} vs wrong {0.1, 0.8}
    assert guards.collapsed([0.5, 0.6, 0.5, 0.4]) and not guards.collapsed([0.5, 0.4, 0.45])
    assert not guards.collapsed([0.6, 0.5]) and guards.collapsed([0.3, None, None]) is False
    inj = guards.injection_success([(0.1, False), (0.2, False), (None, None), (0.9, True)],
                                   [(0.8, True), (0.1, False), (0.5, True), (0.95, True)])
    assert (inj["score_raised"]["successes"], inj["score_raised"]["n"]) == (2, 3)
    assert (inj["flipped"]["successes"], inj["flipped"]["n"]) == (1, 2)
    assert inj["unreadable"] == 1 and inj["probes"] == 4


def test_pair_gold_counts_references_as_right_and_unparseable_as_wrong():
    from selfimprove.tasks.arithmetic import ArithmeticTask

    t = ArithmeticTask(n_train=4, n_dev=2, n_test=2)
    e = t.examples("dev")[0]
    wrong = str(int(e.answer) + 1)
    pairs = [PreferencePair("p", "c", "r", e.id, judge="reference", rejected_answer=wrong),
             PreferencePair("p", "c", "r", e.id, judge="gold", chosen_answer=e.answer, rejected_answer=None),
             PreferencePair("p", "c", "r", e.id, judge="majority-vote", chosen_answer=wrong,
                            rejected_answer=e.answer),
             PreferencePair("p", "c", "r", e.id, method="meta-judge")]
    out = guards.pair_gold(t, {e.id: e}, pairs)
    assert out == {"n": 3, "chosen_correct": 2 / 3, "rejected_wrong": 2 / 3, "both_right_order": 2 / 3}


def test_injection_and_self_preference_guards_need_a_judge_that_sees_the_text():
    from selfimprove.tasks.arithmetic import ArithmeticTask
    from selfimprove.training.guards import _judge_sees_answer_only

    ptrue, rubric = "ptrue", "rubric"
    e1, e2 = ArithmeticTask().examples("dev")[0], ArithmeticTask(verify=2).examples("dev")[0]
    assert _judge_sees_answer_only(ArithmeticTask(), ptrue, e1) is False  # format 1 shows the whole chain
    assert _judge_sees_answer_only(ArithmeticTask(verify=2), ptrue, e2) is True  # format 2: only the answer
    assert _judge_sees_answer_only(ArithmeticTask(verify=2), rubric, e2) is False  # a rubric judge reads text
