"""Golden traces of the inference-time strategies on scripted backends, adaptive sample counts, and the proof
that no strategy but the oracle one can see a gold answer."""

import math
from collections import defaultdict

import pytest

from selfimprove.answers import extract_number
from selfimprove.backends.base import Capabilities
from selfimprove.backends.scripted import ScriptedBackend
from selfimprove.errors import UserError
from selfimprove.prompts import CORRECT, FEEDBACK, ORACLE_CORRECT, REFINE, VERIFY, follow_up, formats
from selfimprove.records import Example, Trace
from selfimprove.registry import names
from selfimprove.strategies import get_strategy
from selfimprove.strategies.adaptive import ASC, DSC, ESC, posterior_beta, posterior_dirichlet
from selfimprove.strategies.base import score_traces
from selfimprove.strategies.best_of_n import BestOfN, WeightedBestOfN
from selfimprove.strategies.self_correct import GatedCorrect, OracleCorrect, SelfCorrect
from selfimprove.strategies.self_refine import SelfRefine
from selfimprove.strategies.weighted import SoftSC, UniversalSC, WeightedSC
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.tasks.base import TaskBase


class NumTask(TaskBase):
    name = "num"
    stop = ("\n\n",)

    def prompt(self, e):
        return f"Question: {e.question}\nAnswer:"

    def extract(self, text):
        return extract_number(text)


def said(prompt: str, text: str) -> bool:
    """The candidate ``text`` is the assistant's turn in a follow-up prompt (``prompts.follow_up``)."""
    return f"<<assistant>>\n{text}\n" in prompt


def review(prompt, candidate):
    """The generic correct prompt for ``candidate``."""
    return follow_up(prompt, candidate, CORRECT)


def oracle_review(prompt, candidate):
    """The oracle correct prompt for ``candidate``."""
    return follow_up(prompt, candidate, ORACLE_CORRECT)


class Recorder(ScriptedBackend):
    """Scripted backend that also counts batched generate calls (scored pairs: ``ScriptedBackend.scored``)."""

    def __init__(self, rules=(), ll=None, **kw):
        super().__init__(rules, ll=ll, **kw)
        self.batches = []

    def generate(self, prompts, params):
        self.batches.append((len(prompts), params))
        return super().generate(prompts, params)


def sequence(*rounds):
    """A reply function whose k-th call for a prompt answers ``rounds[k][i]`` for sample i (then the last
    round again); each round's length must equal the call's n."""
    calls: dict = defaultdict(int)

    def fn(prompt, i):
        k = min(calls[prompt], len(rounds) - 1)
        if i == len(rounds[k]) - 1:
            calls[prompt] += 1
        return rounds[k][i]
    return fn


T = NumTask()
EX = [Example("q1", "one", "1"), Example("q2", "two", "2")]
P1, P2 = "Question: one\nAnswer:", "Question: two\nAnswer:"


# ---- weighted, soft and universal SC -----------------------------------------------------------------------


def test_weighted_sc_mean_vs_sequence():
    # "x 5": 3 tokens at -0.1 (mean -0.1, sum -0.3); "1": 1 token at -0.2 (mean -0.2, sum -0.2)
    b = Recorder([(r"one", [("x 5", -0.1), ("1", -0.2), ("??", -0.1)])])
    mean = WeightedSC(n=3, weight="mean").run(b, T, EX[:1])[0]
    w5, w1, wq = math.exp(-0.1), math.exp(-0.2), math.exp(-0.1)
    assert mean.final_answer == "5" and mean.initial_answer == "5"
    assert mean.confidence == pytest.approx(w5 / (w5 + w1 + wq))
    assert mean.steps[1].info["groups"] == [["5", pytest.approx(w5)], ["1", pytest.approx(w1)]]
    seq = WeightedSC(n=3, weight="sequence").run(b, T, EX[:1])[0]
    s5, s1, sq = math.exp(-0.3 + 0.2), 1.0, math.exp(-0.2 + 0.2)
    assert seq.final_answer == "1" and seq.confidence == pytest.approx(s1 / (s5 + s1 + sq))
    assert seq.info["samples"] == 3 and seq.calls == 1
    assert seq.prompt_tokens == len(P1) and seq.completion_tokens == 3 + 1 + 2
    with pytest.raises(ValueError, match="weight must be one of"):
        WeightedSC(weight="max")


def test_soft_sc_aggregates():
    b = Recorder([(r"one", [("12", -0.5), ("7", -0.3), ("x", -0.01)])])
    mean = SoftSC(n=3).run(b, T, EX[:1])[0]
    assert mean.final_answer == "7" and mean.confidence == pytest.approx(math.exp(-0.3))
    assert mean.steps[1].info["scores"] == [pytest.approx(math.exp(-0.5)), pytest.approx(math.exp(-0.3)),
                                            None]
    prod = SoftSC(n=3, aggregate="product").run(b, T, EX[:1])[0]
    assert prod.final_answer == "7" and prod.steps[1].info["scores"][0] == pytest.approx(math.exp(-1.0))
    none = SoftSC(n=2).run(Recorder([(r"", ["??"])]), T, EX[:1])[0]
    assert none.final_answer is None and none.confidence is None


def test_universal_sc_selection_and_fallback():
    b = Recorder([(r"Response$", lambda p, i: " 2" if "Question: one" in p else " none"),
                  (r"one", ["5", "1", "1"]),
                  (r"two", ["2"])])
    t1, t2 = UniversalSC(n=3, select="generate").run(b, T, EX)
    assert t1.final_answer == "1" and t1.steps[1].info["selected"] == 1 and t1.info["usc_parsed"] is True
    assert t1.confidence == pytest.approx(2 / 3)
    assert "Response 1: 5\nResponse 2: 1\nResponse 3: 1" in t1.steps[1].prompt
    assert t2.final_answer == "2" and t2.info["usc_parsed"] is False  # unparseable selection → majority
    assert [n for n, _ in b.batches] == [2, 2]  # one pool call, one selection call, both batched
    assert b.batches[1][1].temperature == 0.0 and t1.calls == 2
    assert (t2.info["unscored"], t2.info["all_unscored"], t1.info["unscored"]) == (1, True, 0)


def test_universal_sc_by_response_number_probabilities_skips_unparseable_responses():
    # the selector puts most mass on "3" (an unparseable response), then on "2"
    mass = {"3": -0.1, "2": -1.0}
    b = Recorder([(r"one", ["5", "1", "x"])], ll=lambda p, c: mass.get(c.strip(), -5.0))
    t = UniversalSC(n=3).run(b, T, EX[:1])[0]
    assert t.final_answer == "1" and t.steps[1].info["selected"] == 1 and t.info["unscored"] == 0
    assert t.steps[1].info["method"] == "loglikelihood" and t.steps[1].prompt.endswith("Response")
    assert [c.text for c in t.steps[1].completions] == ["1", " 1", "2", " 2", "3", " 3"]
    with pytest.raises(ValueError):
        UniversalSC(n=10, select="loglikelihood")


# ---- adaptive SC -------------------------------------------------------------------------------------------


def test_posteriors_hand_computed():
    eq = T.equivalent
    assert posterior_beta(["1"], eq) == 0.75
    assert posterior_beta(["1"] * 4, eq) == 31 / 32
    assert posterior_beta(["1", "1", "1", "2"], eq) == 26 / 32
    assert posterior_beta([None, None], eq) == 0.5
    # one answer seen: Dirichlet over (seen, unseen) = Beta(c+1, 1), the same as the Beta criterion
    assert posterior_dirichlet(["1"], eq) == pytest.approx(0.75, abs=1e-4)
    assert posterior_dirichlet(["1"] * 3, eq) == pytest.approx(15 / 16, abs=1e-4)
    # counts (1, 1) + unseen → Dirichlet(2, 2, 1): ∫ x e^-x F₂(x) F₁(x) dx = 47/108
    assert posterior_dirichlet(["1", "2"], eq) == pytest.approx(47 / 108, abs=1e-4)


def test_esc_unanimous_stops_after_one_window_split_uses_max():
    b = Recorder([(r"one", ["1", "1", "1", "1"]), (r"two", ["2", "3"])])
    t1, t2 = ESC(window=4, max_samples=16, seed=5).run(b, T, EX)
    assert (t1.info["samples"], t1.info["stopped"], t1.final_answer) == (4, "unanimous", "1")
    assert (t2.info["samples"], t2.info["stopped"], t2.info["rounds"]) == (16, "max_samples", 4)
    assert t2.final_answer == "2" and t2.confidence == 0.5
    assert [n for n, _ in b.batches] == [2, 1, 1, 1]  # one batched call per round over open examples
    assert [p.seed for _, p in b.batches] == [5, 6, 7, 8] and all(p.n == 4 for _, p in b.batches)
    assert t1.calls == 1 and t2.calls == 4 and t2.prompt_tokens == 4 * len(P2)
    assert [s.kind for s in t2.steps] == ["generate"] * 4 + ["vote"]


def test_esc_stops_at_the_first_unanimous_window():
    b = Recorder([(r"one", sequence(["1", "1", "2", "1"], ["1", "1", "1", "1"]))])
    t = ESC(window=4, max_samples=16).run(b, T, EX[:1])[0]
    assert t.info["samples"] == 8 and t.info["stopped"] == "unanimous" and t.confidence == 7 / 8
    with pytest.raises(ValueError, match="multiple of window"):
        ESC(window=3, max_samples=16)


def test_asc_beta_and_dirichlet_counts():
    b = Recorder([(r"one", ["1"]), (r"two", sequence(*[[x] for x in "2323232323232323"]))])
    t1, t2 = ASC(max_samples=16).run(b, T, EX)
    assert t1.info["samples"] == 4 and t1.info["stopped"] == "posterior"  # 1 - 1/32 ≥ 0.95 after 4
    assert t2.info["samples"] == 16 and t2.info["stopped"] == "max_samples"
    assert [n for n, _ in b.batches][:5] == [2, 2, 2, 2, 1]
    d = ASC(criterion="dirichlet", max_samples=16).run(Recorder([(r"one", ["1"])]), T, EX[:1])[0]
    assert d.info["samples"] == 4
    with pytest.raises(ValueError, match="criterion"):
        ASC(criterion="gamma")


def test_dsc_spends_a_fixed_batch_budget_on_the_hardest():
    ex = EX + [Example("q3", "three", "3")]
    b = Recorder([(r"one", ["1"]),                                       # unanimous pre-sample: settled
                  (r"two", ["2", "5"]),                                  # split forever: gets the leftovers
                  (r"three", sequence(["3", "3", "3", "4"], ["3"] * 4))])  # settles after one more window
    t1, t2, t3 = DSC(budget=8, window=4).run(b, T, ex)
    assert [t.info["samples"] for t in (t1, t2, t3)] == [4, 12, 8]
    assert sum(t.info["samples"] for t in (t1, t2, t3)) == 24 == 8 * 3
    assert (t1.info["stopped"], t2.info["stopped"], t3.info["stopped"]) == ("posterior", "budget",
                                                                            "posterior")
    assert [n for n, _ in b.batches] == [3, 2, 1]
    with pytest.raises(ValueError, match="at least window"):
        DSC(budget=2, window=4)


# ---- best-of-n ---------------------------------------------------------------------------------------------


def _ptrue_ll(prompt, cont):
    good = said(prompt, "1") or said(prompt, "2")
    return (-0.1 if cont.strip().lower() == "yes" else -2.0) if good else (
        -2.0 if cont.strip().lower() == "yes" else -0.1)


def test_best_of_n_by_ptrue_golden():
    b = Recorder([(r"one", ["5", "1", "x", "5"])], ll=_ptrue_ll)
    t = BestOfN(n=4, verifier="ptrue").run(b, T, EX[:1])[0]
    hi, lo = 1 / (1 + math.exp(-1.9)), 1 / (1 + math.exp(1.9))
    assert t.info["scores"] == [pytest.approx(lo), pytest.approx(hi), None, pytest.approx(lo)]
    assert t.final_answer == "1" and t.initial_answer == "5" and t.info["selected"] == 1
    assert t.confidence == pytest.approx(hi) and (t.info["unscored"], t.info["verdicts"]) == (0, 3)
    assert [s.kind for s in t.steps] == ["generate", "verify", "verify", "verify", "select"]
    verify_prompts = [follow_up(P1, c, VERIFY) for c in ("5", "1", "5")]
    assert [s.prompt for s in t.steps[1:4]] == verify_prompts
    assert t.calls == 4 and t.prompt_tokens == len(P1) + sum(map(len, verify_prompts))
    assert t.completion_tokens == 4 + 3 * sum(map(len, formats(T).yes_no[0] + formats(T).yes_no[1]))
    assert len(b.batches) == 1  # the scores came from one batched log-likelihood call
    st = score_traces(T, EX[:1], [t])[0]
    assert st.correct is True and st.initial_correct is False


def test_weighted_best_of_n_sums_scores_per_answer():
    # 5 scores 0.4 twice (0.8 in all), 1 scores 0.7 once: best-of-n picks 1, weighted picks 5
    ll = lambda p, c: math.log(0.7 if said(p, "1") else 0.4) if c.strip().lower() == "yes" else math.log(
        0.3 if said(p, "1") else 0.6)
    b = Recorder([(r"one", ["5", "1", "5"])], ll=ll)
    assert BestOfN(n=3).run(b, T, EX[:1])[0].final_answer == "1"
    t = WeightedBestOfN(n=3).run(b, T, EX[:1])[0]
    assert t.final_answer == "5" and t.info["selected"] == 0
    assert t.confidence == pytest.approx(0.8 / 1.5)
    assert t.steps[-1].info["groups"] == [["5", pytest.approx(0.8)], ["1", pytest.approx(0.7)]]


def test_best_of_n_nothing_scored_keeps_first_and_says_so():
    b = Recorder([(r"one", ["x", "y"])])
    t = BestOfN(n=2, verifier="verbal").run(b, T, EX[:1])[0]
    assert t.final_answer is None and t.confidence is None and t.info["selected"] is None
    assert t.steps[-1].info["fallback"].startswith("first sample") and t.info["verdicts"] == 0
    assert not t.info["all_unscored"]  # nothing was parseable, so nothing was sent to the verifier


# ---- refine and correct ------------------------------------------------------------------------------------


def test_self_refine_golden_generic_format():
    b = Recorder([(r"say what the mistake is\.$", lambda p, i: "No issues." if said(p, "1") or said(p, "2")
                   else "The sum is wrong."), (r"Write your answer again", ["1"]), (r"one", ["5"]),
                  (r"two", ["2"])])
    t1, t2 = SelfRefine(max_rounds=3).run(b, T, EX)
    assert [s.kind for s in t1.steps] == ["generate", "feedback", "refine", "feedback"]
    assert (t1.initial_answer, t1.final_answer, t1.info["rounds"],
            t1.info["stopped"]) == ("5", "1", 1, "no-issues")
    assert t1.steps[1].prompt == follow_up(P1, "5", FEEDBACK)
    assert t1.steps[2].prompt == follow_up(P1, "5", REFINE.format(feedback="The sum is wrong."))
    assert [s.kind for s in t2.steps] == ["generate", "feedback"] and t2.info["rounds"] == 0
    assert all(p.temperature == 0.0 for _, p in b.batches)
    assert [n for n, _ in b.batches] == [2, 2, 1, 1]
    want = len(P1) + len(t1.steps[1].prompt) + len(t1.steps[2].prompt) + len(t1.steps[3].prompt)
    assert t1.prompt_tokens == want and t1.calls == 4
    assert t1.completion_tokens == 1 + len("The sum is wrong.") + 1 + len("No issues.")
    limited = SelfRefine(max_rounds=1).run(b, T, EX[:1])[0]
    assert limited.info["stopped"] == "round-limit" and limited.final_answer == "1"


def test_self_refine_uses_the_arithmetic_verdict_as_feedback():
    task = ArithmeticTask(terms=(2, 2), digits=(1, 1))
    e = task.examples("test")[0]
    wrong = task.render(task.problem(e), task.problem(e).labels, final=int(e.answer) + 1)
    right = task.solution(e)
    b = Recorder([(r" \?$", lambda p, i: " yes" if p.endswith(right + " ?") else " no"),
                  (r" !$", [right]), (r":$", [wrong])])
    t = score_traces(task, [e], SelfRefine().run(b, task, [e]))[0]
    assert [s.kind for s in t.steps] == ["generate", "feedback", "refine", "feedback"]
    assert (t.steps[1].prompt == task.verify_prompt(e, wrong)
            and t.steps[2].prompt == task.correct_prompt(e, wrong))
    assert (t.initial_correct, t.correct, t.info["stopped"]) == (False, True, "no-issues")


def test_self_correct_fair_protocol_golden():
    b = Recorder([(r"Review your answer", lambda p, i: "3" if said(p, "1") else "2"),
                  (r"one", ["1"]), (r"two", ["7"])])
    t1, t2 = score_traces(T, EX, SelfCorrect().run(b, T, EX))
    assert t1.steps[1].prompt == review(P1, "1")
    assert t2.steps[1].prompt == review(P2, "7")  # the same prompt for everyone
    assert "incorrect" not in t1.steps[1].prompt and "wrong" not in t1.steps[1].prompt
    assert (t1.initial_correct, t1.correct) == (True, False)   # c → w: correction hurt
    assert (t2.initial_correct, t2.correct) == (False, True)   # w → c
    assert all(p.temperature == 0.0 and p.n == 1 for _, p in b.batches) and len(b.batches) == 2
    assert t1.calls == 2 and t1.completion_tokens == 2 and t1.info["samples"] == 2
    assert t1.confidence is None and "oracle" not in t1.info


def test_gated_correct_keep_replace_and_trust():
    # P(True): answer 1 or 2 → 0.9, 4 → 0.2 (a revision the model trusts less), anything else → 0.3
    p_of = {"1": 0.9, "2": 0.9, "4": 0.2}

    def ll(prompt, cont):
        cand = prompt.split("<<assistant>>\n")[1].split("\n")[0]
        p = p_of.get(cand, 0.3)
        return math.log(p if cont.strip().lower() == "yes" else 1 - p)
    ex = EX + [Example("q3", "three", "3")]
    b = Recorder([(r"Review your answer", lambda p, i: "2" if "two" in p else "4"),
                  (r"one", ["1"]), (r"two", ["5"]), (r"three", ["6"])], ll=ll)
    t1, t2, t3 = GatedCorrect(threshold=0.5).run(b, T, ex)
    assert (t1.info["gate"], t1.final_answer, t1.confidence) == ("kept", "1", pytest.approx(0.9))
    assert [s.kind for s in t1.steps] == ["generate", "verify", "trust"] and t1.calls == 2
    assert (t2.info["gate"], t2.info["replaced"], t2.final_answer) == ("revised", True, "2")
    assert t2.initial_answer == "5" and t2.confidence == pytest.approx(0.9)
    assert [s.kind for s in t2.steps] == ["generate", "verify", "correct", "verify", "trust"]
    assert (t3.info["replaced"], t3.final_answer, t3.confidence) == (False, "6", pytest.approx(0.3))
    assert t3.info["p_true_revised"] == pytest.approx(0.2)
    assert [n for n, _ in b.batches] == [3, 2]  # answer all, revise the two low-confidence ones


def test_oracle_correct_revises_only_wrong_answers_and_is_labelled():
    b = Recorder([(r"is incorrect", ["2"]), (r"one", ["1"]), (r"two", ["x"])])
    t1, t2 = OracleCorrect().run(b, T, EX)
    assert OracleCorrect.uses_gold is True and "oracle" in OracleCorrect.name
    assert t1.info["oracle"] is True and t2.info["oracle"] is True
    assert len(t1.steps) == 1 and t1.final_answer == "1"          # right: left alone
    assert t2.steps[1].prompt == oracle_review(P2, "x")  # unparseable counts as wrong
    assert (t2.initial_answer, t2.final_answer) == (None, "2")
    no_gold = OracleCorrect().run(b, T, [Example("q9", "two", None)])[0]
    assert no_gold.info["oracle_skipped"] is True and len(no_gold.steps) == 1


# ---- gold answers stay out of every strategy but the oracle one --------------------------------------------

CANARY = "CANARY-7f3a9"
STRATEGIES = [n for n in names("strategies") if not getattr(get_strategy(n), "requires_code", False)]
"""Every strategy that runs on any task (those that run programs need a code task:
tests/test_code_strategies)."""
SPECS = sorted(STRATEGIES) + [f"best-of-n:verifier={v}"
                              for v in ("verbal", "rubric", "checklist", "pairwise")]
RULES = [(r"correct\? Reply with Yes", [" no"]), (r"say what the mistake is\.$", ["Check step 2."]),
         (r"Response$", [" 1"]),
         (r"Score", ["Score: 3"]), (r"Better response", ["A"]), (r"Checklist:\n$", ["- Is it right?"]),
         (r"Answers:\n$", ["1. YES"]), (r"Confidence:$", ["70"]), (r"Answer:$", ["7", "8", "7"])]


def _run_all(examples):
    out = {}
    for spec in SPECS:
        b = Recorder(RULES)
        traces = get_strategy(spec).run(b, T, examples)
        out[spec] = (traces, [p for p, _ in b.calls] + [p for p, _ in b.scored])
    return out


def test_no_strategy_prompt_ever_contains_the_gold_answer():
    ex = [Example(f"q{i}", f"what is {i}?", CANARY, meta={"solution": f"... #### {CANARY}"})
          for i in range(3)]
    for spec, (traces, prompts) in _run_all(ex).items():
        assert prompts, spec
        assert not any(CANARY in p for p in prompts), spec
        assert not any(CANARY in t.to_json() for t in traces), spec


def test_only_the_oracle_strategy_depends_on_gold():
    questions = [f"what is {i}?" for i in range(3)]
    with_gold = _run_all([Example(f"q{i}", q, "7") for i, q in enumerate(questions)])
    without = _run_all([Example(f"q{i}", q, None) for i, q in enumerate(questions)])
    oracle = {name for name in STRATEGIES if getattr(get_strategy(name), "uses_gold", False)}
    assert oracle == {n for n in STRATEGIES if "oracle" in n} == {"oracle-correct"}
    for spec in SPECS:
        a, b = with_gold[spec][0], without[spec][0]
        if spec in oracle:
            assert [t.info["oracle"] for t in a] == [True] * 3
            assert [len(t.steps) for t in a] == [1, 1, 1] and [len(t.steps) for t in b] == [1, 1, 1]
        else:
            assert [t.to_dict() for t in a] == [t.to_dict() for t in b], spec  # gold changes nothing
            assert not any(t.info.get("oracle") for t in a), spec
    wrong_gold = OracleCorrect().run(Recorder(RULES), T, [Example("q0", "what is 0?", "9")])[0]
    assert len(wrong_gold.steps) == 2  # with a gold answer the first answer misses, the oracle revises


# ---- settings from the CLI ---------------------------------------------------------------------------------


def test_specs_build_every_strategy_and_reject_bad_values():
    assert get_strategy("esc:window=4,max_samples=16") == ESC(window=4, max_samples=16)
    assert get_strategy("asc:threshold=0.9,criterion=dirichlet").criterion == "dirichlet"
    assert get_strategy("dsc:budget=6").budget == 6.0
    assert get_strategy("best-of-n:verifier=judge,n=4") == BestOfN(n=4, verifier="judge")
    assert get_strategy("gated-correct:threshold=0.7").threshold == 0.7
    assert get_strategy("self-refine:max_rounds=1").max_rounds == 1
    for name in STRATEGIES:
        s = get_strategy(name)
        assert s.name == name
        for f in s.__dataclass_fields__.values():
            assert f.type in ("int", "float", "str", "bool", int, float, str, bool), (name, f.name)
    with pytest.raises(UserError, match="verifier must be one of"):
        get_strategy("best-of-n:verifier=gold")
    with pytest.raises(UserError, match="multiple of window"):
        get_strategy("esc:window=5,max_samples=16")


def test_logprob_strategies_refuse_a_backend_without_logprobs():
    class Blind(ScriptedBackend):
        capabilities = Capabilities()
    from selfimprove.errors import CapabilityError
    for spec in ("weighted-sc", "soft-sc", "best-of-n", "gated-correct"):
        with pytest.raises(CapabilityError):
            get_strategy(spec).run(Blind([(r"", ["1"])]), T, EX[:1])


def test_traces_round_trip():
    b = Recorder([(r"one", ["1", "2"])])
    for s in (ESC(window=2, max_samples=4), BestOfN(n=2), GatedCorrect()):
        t = s.run(b, T, EX[:1])[0]
        assert Trace.from_json(t.to_json()) == t


# ---- truncated completions and unscored verdicts -----------------------------------------------------------


def test_a_completion_cut_at_max_tokens_never_votes_and_is_counted_apart():
    from selfimprove.metrics.accuracy import accuracy, failure_cells
    from selfimprove.strategies.self_consistency import SelfConsistency

    # sample 0 is cut at 12 tokens after "add 1 to": read as text it would say 1, the wrong answer
    b = Recorder(
        [(r"one", ["We can now add 1 to the total of", "1", "1"]), (r"two", ["and then 7 plus 3 is"])])
    sc = SelfConsistency(n=3, max_tokens=12).run(b, T, EX[:1])[0]
    assert sc.steps[0].answers == (None, "1", "1") and sc.steps[0].info["truncated"] == [0]
    assert sc.final_answer == "1" and sc.info["truncated"] == 1
    greedy = get_strategy("greedy:max_tokens=12").run(b, T, EX)
    assert greedy[0].final_answer is None and greedy[0].info["truncated"] == 1  # "We can now a…" cut
    assert greedy[1].final_answer is None and greedy[1].info["truncated"] == 1
    m = accuracy(score_traces(T, EX, greedy) + [score_traces(T, EX[:1], [sc])[0]])
    # both stay in the denominator
    assert (m["n"], m["correct"], m["unparsed"], m["truncated"]) == (3, 1, 0, 2)
    assert failure_cells(m) == ("0/3", "2/3", "—")


def test_best_of_n_where_every_verdict_is_unscored_says_so():
    from selfimprove.metrics.accuracy import accuracy, failure_cells

    # the judge rambles without a score: every verdict is unscored, so there is no selection
    b = Recorder([(r"Score", ["User: 3 + 6 = 9"]), (r"one", ["5", "1"])])
    t = BestOfN(n=2, verifier="rubric", judge_method="generate").run(b, T, EX[:1])[0]
    assert t.info["all_unscored"] and (t.info["unscored"], t.info["verdicts"]) == (2, 2)
    assert t.info["selected"] is None and t.confidence is None and t.final_answer == "5"
    m = accuracy([t])
    assert (m["unscored"], m["verdicts"], m["all_unscored"]) == (2, 2, 1)
    assert failure_cells(m)[2] == "2/2 · 1 none"


def test_best_of_n_by_rubric_score_probabilities():
    # the judge puts its mass on "4" for the response 1 and on "1" for the response 5 (any form, spaced or
    # not)
    def ll(prompt, cont):
        best = "4" if "<response>1</response>" in prompt else "1"
        return -0.1 if cont.strip() == best else -4.0
    b = Recorder([(r"one", ["5", "1"])], ll=ll)
    t = BestOfN(n=2, verifier="rubric").run(b, T, EX[:1])[0]  # judge_method auto: the backend scores text
    assert t.final_answer == "1" and t.info["selected"] == 1 and (t.info["unscored"],
                                                                  t.info["verdicts"]) == (0, 2)
    hi, lo = math.exp(-0.1), math.exp(-4.0)
    expected = (4 * hi + lo * sum(k for k in range(6) if k != 4)) / (hi + 5 * lo)
    assert t.confidence == pytest.approx(expected / 5)
    judge = next(s for s in t.steps if s.kind == "judge")
    assert judge.info["method"] == "loglikelihood" and judge.prompt.endswith("Score:")
    assert [c.text for c in judge.completions] == [x for k in "012345" for x in (k, " " + k)]
    # no probability on any score token: unscored, and the selection says it had nothing to go on
    none = BestOfN(n=2, verifier="rubric").run(Recorder([(r"one", ["5", "1"])], ll=lambda p, c: -30.0), T,
                                               EX[:1])[0]
    assert none.info["all_unscored"] and none.info["selected"] is None
    assert "of the probability on an allowed answer" in next(s for s in none.steps
                                                             if s.kind == "judge").verdicts[0].reason


def test_a_task_whose_answer_comes_first_reads_it_from_a_cut_completion():
    from selfimprove.answers import extract_yes_no

    class YesNo(NumTask):
        def complete_part(self, text):  # "No, it does not ..." has answered before it is cut
            return text

        def extract(self, text):
            return extract_yes_no(text)

    b = Recorder([(r"one", ["No, it does not, because the", "I think that it is"])])
    t = get_strategy("self-consistency:n=2,max_tokens=12").run(b, YesNo(), EX[:1])[0]
    assert t.steps[0].answers == ("no", None) and t.steps[0].info["truncated"] == [0, 1]
    assert t.final_answer == "no"
    # a number task: None
    assert get_strategy("greedy:max_tokens=12").run(b, T, EX[:1])[0].final_answer is None
