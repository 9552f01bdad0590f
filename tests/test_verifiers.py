"""Self-evaluation verifiers (P(True), P(IK), verbalised confidence) and LLM judges, on scripted backends."""

import math

import pytest

from selfimprove.answers import extract_number
from selfimprove.backends.base import Capabilities
from selfimprove.backends.scripted import ScriptedBackend
from selfimprove.errors import CapabilityError
from selfimprove.prompts import CORRECT, FEEDBACK, VERIFY, follow_up, formats
from selfimprove.records import Example
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.tasks.base import TaskBase
from selfimprove.verifiers.judge import (
    ChecklistJudge,
    PairwiseJudge,
    RubricJudge,
    count_unparseable,
    parse_checklist,
    parse_checklist_answers,
    parse_score,
)
from selfimprove.verifiers.ptrue import PIK, PTrue, VerbalConfidence, parse_confidence


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


class Scoring(ScriptedBackend):
    """Scripted backend whose log-likelihoods depend on the prompt; records every scored pair."""

    def __init__(self, rules=(), ll=None, **kw):
        super().__init__(rules, **kw)
        self.ll = ll or (lambda p, c: -0.1 * len(c))
        self.scored = []

    def loglikelihood(self, prompts, continuations):
        self.scored.append((list(prompts), list(continuations)))
        return [self.ll(p, c) for p, c in zip(prompts, continuations)]


class NoScoring(ScriptedBackend):
    capabilities = Capabilities(seed=True, logprobs=True, loglikelihood=False)


EX = [Example("q1", "one", "1"), Example("q2", "two", "2")]


YES, NO = formats(NumTask()).yes_no


def test_ptrue_loglikelihood_golden():
    # P(yes) high when the candidate says 1, low otherwise; each form of yes/no ("Yes", " yes", ...) alike
    def ll(p, c):
        yes = c.strip().lower() == "yes"
        return (-0.2 if yes else -2.0) if said(p, "1") else (-3.0 if yes else -0.1)
    b = Scoring(ll=ll)
    task = NumTask()
    out = PTrue(b, task).assess(EX, [["1", "5"], ["7"]])
    p_hi, p_lo = 1 / (1 + math.exp(-2.0 + 0.2)), 1 / (1 + math.exp(-0.1 + 3.0))
    assert [[v.score for v in row] for row in out.verdicts] == [[pytest.approx(p_hi), pytest.approx(p_lo)],
                                                                [pytest.approx(p_lo)]]
    assert [[v.correct for v in row] for row in out.verdicts] == [[True, False], [False]]
    assert len(b.scored) == 1  # one batched call: 3 prompts × every form of yes and no
    assert YES == ("Yes", " Yes", "yes", " yes", "YES", " YES") and NO[0] == "No" and len(NO) == 6
    assert b.scored[0][1] == list(YES + NO) * 3
    step = out.steps[0][0]
    prompt = follow_up("Question: one\nAnswer:", "1", VERIFY)
    assert step.kind == "verify" and step.prompt == prompt
    assert [c.text for c in step.completions] == list(YES + NO)
    assert [c.prompt_tokens for c in step.completions] == [len(prompt)] * 12
    assert [c.completion_tokens for c in step.completions] == [len(c) for c in YES + NO]
    assert step.info["loglikelihoods"] == {"yes": [-0.2] * 6, "no": [-2.0] * 6}
    assert step.info["method"] == "loglikelihood" and step.info["mass"] == pytest.approx(
        6 * (math.exp(-0.2) + math.exp(-2.0)))
    assert step.verdicts[0].score == pytest.approx(p_hi)


def test_ptrue_normalises_over_forms_and_refuses_a_reading_without_mass():
    # the chat model says "Yes" without a space: the reading must not depend on the form
    forms = {"Yes": -0.5, " yes": -3.0, "No": -1.0}
    b = Scoring(ll=lambda p, c: forms.get(c, -50.0) if said(p, "1") else -9.0)
    out = PTrue(b, NumTask()).assess(EX[:1], [["1", "2"]])
    py, pn = math.exp(-0.5) + math.exp(-3.0), math.exp(-1.0)
    assert out.verdicts[0][0].score == pytest.approx(py / (py + pn))
    # 12 forms at e^-9 each: 0.15 % of the probability on yes or no, below the 1 % floor: unscored
    v = out.verdicts[0][1]
    assert v.score is None and v.correct is None and "0.1% of the probability" in v.reason


def test_ptrue_verify_contract_skips_unparseable():
    b = Scoring()
    vs = PTrue(b, NumTask()).verify(EX[:1], [["1", None]])
    assert vs[0][1].correct is None and vs[0][1].reason == "unparseable"
    py, pn = sum(math.exp(-0.1 * len(c)) for c in YES), sum(math.exp(-0.1 * len(c)) for c in NO)
    assert vs[0][0].score == pytest.approx(py / (py + pn))
    assert len(b.scored[0][0]) == 12  # only the parseable answer was scored (every form of yes and no)


def test_ptrue_generation_fallback():
    b = NoScoring([(r"<<assistant>>\n1\n", [(" yes", -0.05)]), (r"<<assistant>>\n2\n", [(" no", -0.1)]),
                   (r"<<assistant>>\n3\n", [("maybe", -0.1)]),
                   (r"<<assistant>>\n4\n", [ScriptedBackend.FAIL])])
    v = PTrue(b, NumTask(), method="auto", max_tokens=4)
    assert v.method == "generate"
    out = v.assess(EX[:1], [["1", "2", "3", "4"]])
    scores = [x.score for x in out.verdicts[0]]
    assert scores[0] == pytest.approx(math.exp(-0.2)) and scores[1] == pytest.approx(1 - math.exp(-0.3))
    assert scores[2:] == [None, None]
    assert out.verdicts[0][2].correct is None and "unparseable verdict" in out.verdicts[0][2].reason
    assert "request failed" in out.verdicts[0][3].reason
    params = b.calls[0][1]
    assert params.temperature == 0.0 and params.max_tokens == 4 and params.stop == ("\n",)
    with pytest.raises(CapabilityError):
        PTrue(b, NumTask(), method="loglikelihood")


def test_ptrue_uses_the_tasks_own_format():
    task = ArithmeticTask(terms=(2, 2), digits=(1, 1))
    ex = task.examples("test")[:1]
    b = Scoring()
    cand = task.solution(ex[0])
    PTrue(b, task).assess(ex, [[cand]])
    prompts, conts = b.scored[0]
    assert prompts[0] == task.verify_prompt(ex[0], cand) and prompts[0].endswith(" ?")
    assert conts == list(task.verdict_continuations)
    f = formats(task)
    assert f.correct(ex[0], cand) == task.correct_prompt(ex[0], cand)
    assert f.feedback(ex[0], cand) == task.verify_prompt(ex[0], cand)  # the verdict is the feedback
    assert f.refine(ex[0], cand, " no") == task.correct_prompt(ex[0], cand)
    assert f.no_issues(" yes") and not f.no_issues(" no") and f.feedback_stop == ("\n",)
    assert {"verify_prompt", "correct_prompt", "parse_verdict"} <= set(f.own)


def test_generic_formats_are_fair():
    f = formats(NumTask())
    e = EX[0]
    assert f.own == ()
    assert f.correct(e, "5") == review("Question: one\nAnswer:", "5")
    assert f.feedback(e, "5") == follow_up("Question: one\nAnswer:", "5", FEEDBACK)
    for text in (f.correct(e, "5"), f.feedback(e, "5"), f.verify(e, "5")):
        assert "incorrect" not in text.lower() and "wrong" not in text.lower()
    assert "incorrect" in f.oracle_correct(e, "5")
    assert (f.no_issues("No issues.") and f.no_issues("There are no mistakes here")
            and not f.no_issues("Fix step 2"))
    assert f.parse_verdict(" Yes, it is") is True and f.parse_verdict("No") is False
    assert f.parse_verdict("perhaps") is None


def test_pik_is_asked_before_answering():
    b = Scoring(ll=lambda p, c: -0.5 if c.strip().lower() == "yes" else -1.5)
    out = PIK(b, NumTask()).assess(EX, [["1", "9"], ["2"]])
    p = 1 / (1 + math.exp(-1.0))
    assert [[v.score for v in row] for row in out.verdicts] == [[pytest.approx(p)] * 2, [pytest.approx(p)]]
    prompts = b.scored[0][0]
    assert len(prompts) == 2 * 12  # one question each, every form of yes and no: candidates are not shown
    assert "one" in prompts[0] and "<<assistant>>" not in prompts[0]
    assert out.steps[0][0].kind == "pik"


@pytest.mark.parametrize("text,want", [("85", 0.85), ("85%", 0.85), (" 0.7", 0.7), ("100", 1.0), ("0", 0.0),
                                       ("I am 90 percent sure", 0.9), ("150", None), ("high", None),
                                       ("", None),
                                       ("1.5", 0.015)])
def test_parse_confidence(text, want):
    got = parse_confidence(text)
    assert got == (pytest.approx(want) if want is not None else None)


def test_verbal_confidence_unparseable_is_none():
    b = ScriptedBackend([(r"<<assistant>>\n1\n", ["80"]), (r"<<assistant>>\n2\n", ["very"])])
    out = VerbalConfidence(b, NumTask()).assess(EX[:1], [["1", "2"]])
    assert [v.score for v in out.verdicts[0]] == [0.8, None]
    assert out.verdicts[0][0].correct is True and out.verdicts[0][1].correct is None
    assert count_unparseable(out.verdicts) == 1


def test_rubric_judge():
    b = ScriptedBackend([(r"<response>1</response>", ["Relevant and right.\nScore: 4"]),
                         (r"<response>2</response>", ["Score: 7"]),
                         (r"<response>3</response>", ["I cannot decide"])])
    out = RubricJudge(b, NumTask()).assess(EX[:1], [["1", "2", "3"]])
    vs = out.verdicts[0]
    assert (vs[0].score, vs[0].correct, vs[0].reason) == (0.8, True, "Score: 4")
    assert vs[1].correct is None and vs[2].correct is None and count_unparseable(out.verdicts) == 2
    assert "additive 5-point" in out.steps[0][0].prompt and "User: one" in out.steps[0][0].prompt
    assert parse_score("Score: 2\n... Score: 3") == 3.0 and parse_score("score = 5") == 5.0


def test_pairwise_both_orders_and_consistency():
    def reply(prompt, i):
        a = prompt.split("<response A>")[1].split("<")[0]
        b = prompt.split("<response B>")[1].split("<")[0]
        if "?" in (a, b):
            return "unsure"
        if {"1", "2"} == {a, b}:
            return "A" if a == "1" else "B"  # prefers 1 in both orders: consistent
        return "A"  # position bias: always the first shown
    b = ScriptedBackend([(r"Better response", reply)])
    judge = PairwiseJudge(b, NumTask())
    res, steps = judge.compare([EX[0]] * 3, ["1", "1", "1"], ["2", "3", "?"])
    assert (res[0].preferred, res[0].consistent, res[0].votes) == (0, True, (0, 0))
    assert (res[1].preferred, res[1].consistent, res[1].votes) == (None, False, (0, 1))
    assert (res[2].preferred, res[2].consistent) == (None, None)
    assert [s.info["order"] for s in steps[0]] == ["ab", "ba"]
    assert "<response A>2</response A>" in steps[0][1].prompt  # the second order swaps the responses
    out = judge.assess(EX[:1], [["1", "2", "3"]])
    # 1 beats 2 (1 point), 1 vs 3 inconsistent (½ each), 2 vs 3 inconsistent (½ each)
    assert [v.score for v in out.verdicts[0]] == [0.75, 0.25, 0.5]
    assert len(out.steps[0]) == 6
    single = judge.assess(EX[:1], [["1"]])
    assert single.verdicts[0][0].correct is None


def test_pairwise_by_probability_cancels_position_bias():
    def ll(prompt, cont):
        a = prompt.split("<response A>")[1].split("<")[0]
        # the judge likes "A" (the first position) by 0.7, and prefers the response "1" by a further margin
        p_a = 0.7 if "1" not in prompt.split("<response B>")[1].split("<")[0] else 0.4
        p_a = 0.9 if a == "1" else p_a
        return math.log(p_a if cont.strip() == "A" else 1 - p_a)
    b = Scoring(ll=ll)
    judge = PairwiseJudge(b, NumTask(), method="loglikelihood")
    res, steps = judge.compare([EX[0]] * 2, ["1", "2"], ["2", "3"])
    # 1 vs 2: P(first better) = 0.9 shown first, 1 - 0.4 = 0.6 shown second: consistent, 0.75
    assert (res[0].preferred, res[0].consistent, res[0].p_first) == (0, True, pytest.approx(0.75))
    # 2 vs 3: the judge names whichever is shown first (0.7 both ways): inconsistent, exactly ½
    assert (res[1].preferred, res[1].consistent, res[1].p_first) == (None, False, pytest.approx(0.5))
    assert ([s.info["order"] for s in steps[0]] == ["ab", "ba"]
            and steps[0][0].info["method"] == "loglikelihood")
    out = judge.assess(EX[:1], [["1", "2"]])
    assert [v.score for v in out.verdicts[0]] == [pytest.approx(0.75), pytest.approx(0.25)]
    with pytest.raises(ValueError):
        PairwiseJudge(b, NumTask(), method="guess")
    with pytest.raises(CapabilityError):
        RubricJudge(NoScoring(), NumTask(), method="loglikelihood")


def test_checklist_judge():
    b = ScriptedBackend([(r"Checklist:\n$", ["- Is the answer a number?\n- Is it the sum?\nnoise"]),
                         (r"<response>1</response>", ["1. YES\n2. YES"]),
                         (r"<response>2</response>", ["1. YES\n2. NO"]),
                         (r"<response>3</response>", ["1. YES"])])
    out = ChecklistJudge(b, NumTask()).assess(EX[:1], [["1", "2", "3"]])
    vs = out.verdicts[0]
    assert [v.score for v in vs] == [1.0, 0.5, None] and [v.correct for v in vs] == [True, False, None]
    assert out.steps[0][0].kind == "checklist" and out.steps[0][0].info["checklist"] == [
        "Is the answer a number?", "Is it the sum?"]
    assert "1. Is the answer a number?\n2. Is it the sum?" in out.steps[0][1].prompt
    assert parse_checklist("1. a?\n2) b\nfoo\nreally?") == ["a?", "b", "really?"]
    assert parse_checklist_answers("2. no\n1: Yes", 2) == [True, False]
    fixed = ChecklistJudge(b, NumTask(), checklist=["Q?"])
    assert fixed.make_checklists(EX) == ([["Q?"], ["Q?"]], [])
    none = ChecklistJudge(ScriptedBackend([(r"Checklist", [""])]), NumTask()).assess(EX[:1], [["1"]])
    assert none.verdicts[0][0].correct is None and none.verdicts[0][0].reason == "no checklist could be read"


def test_ptrue_reads_the_verdict_after_a_rationale_when_the_format_thinks_first():
    task = ArithmeticTask(terms=(2, 2), digits=(1, 1), verify=2)
    ex = task.examples("test")[:2]
    right, wrong = task.solution(ex[0]), task.solution(ex[1])[:-1] + "9"
    own = {task.verify_prompt(e, c): task.verify_target(e, c) for e, c in ((ex[0], right), (ex[1], wrong))}
    # the scripted model writes format 2's rationale; the stop string cuts it at the marker
    b = Scoring([(r"\?$", lambda prompt, i: own[prompt])],
                ll=lambda p, c: (-0.1 if c == " yes" else -2.5) if p.endswith("= |") else
                (-2.5 if c == " yes" else -0.1))
    out = PTrue(b, task).assess(ex, [[right], [wrong]])
    p_yes, p_no = 1 / (1 + math.exp(-2.5 + 0.1)), 1 / (1 + math.exp(-0.1 + 2.5))
    assert [row[0].score for row in out.verdicts] == [pytest.approx(p_yes), pytest.approx(p_no)]
    assert b.calls[0][1].stop == () and b.calls[0][1].temperature == 0.0  # cut at the marker afterwards
    scored_prompts = b.scored[0][0]
    assert scored_prompts[0] == task.verify_prompt(ex[0], right) + own[task.verify_prompt(ex[0], right)][:-4]
    step = out.steps[0][0]
    assert step.info["rationale"].endswith("= ") and len(step.completions) == 3  # rationale + yes + no
    f = formats(task)
    assert f.verify_think == "|" and f.feedback_tokens > 200
    assert task.parse_verdict(own[task.verify_prompt(ex[1], wrong)]) is False


@pytest.mark.parametrize("reply, finish", [("1" * 1000, "length"), (" q1=1 #100", "stop")])
def test_ptrue_judges_only_a_rationale_that_wrote_the_marker(reply, finish):
    task = ArithmeticTask(terms=(2, 2), digits=(1, 1), verify=2)
    ex = task.examples("test")[:1]
    b = Scoring([(r"\?$", lambda prompt, i: reply)])
    out = PTrue(b, task).assess(ex, [[task.solution(ex[0])]])
    v = out.verdicts[0][0]
    assert v.score is None and v.correct is None and "never wrote '|'" in v.reason and finish in v.reason
    assert b.scored == []  # nothing was scored


def test_pik_asks_before_answering_without_a_rationale_even_when_verify_thinks_first():
    task = ArithmeticTask(terms=(2, 2), digits=(1, 1), verify=2)
    b = Scoring()
    verdicts, _ = PIK(b, task).ask(task.examples("test")[:2])
    assert b.calls == [] and len(b.scored) == 1 and all(v.score is not None for v in verdicts)


def test_choice_fast_path_equals_loglikelihood_on_a_local_model(tiny_random_model_dir):
    from selfimprove.backends.hf import HFBackend
    from selfimprove.verifiers.choice import _next_token_scores, choose

    b = HFBackend(str(tiny_random_model_dir))
    prompts, forms = ["12+3=", "7+8=1"], ["1", "5", "a"]
    fast = _next_token_scores(b, prompts, forms)
    slow = b.loglikelihood([p for p in prompts for _ in forms], [f for _ in prompts for f in forms])
    assert fast == pytest.approx(slow, abs=1e-4)
    # forms of several tokens continue the prompt's cache: the same numbers as scoring each row the slow way
    multi = ["15", "1", "a5+", "7"]
    got = _next_token_scores(b, prompts, multi)
    want = b.loglikelihood([p for p in prompts for _ in multi], [f for _ in prompts for f in multi])
    assert got == pytest.approx(want, abs=1e-4)
    assert len(b.tokenizer("a5+", add_special_tokens=False)["input_ids"]) == 3  # really several tokens
    choices, _ = choose(b, prompts, [("one", ("1",)), ("five", ("5", "55"))], min_mass=0.0)
    p1, p5 = math.exp(slow[0]), math.exp(slow[1]) + math.exp(b.loglikelihood([prompts[0]], ["55"])[0])
    assert choices[0].probs["one"] == pytest.approx(p1 / (p1 + p5), abs=1e-4)


def test_choice_prompts_sharing_a_prefix_encode_it_once_with_the_same_scores(tiny_random_model_dir):
    from selfimprove.backends.hf import HFBackend
    from selfimprove.verifiers.choice import _next_token_scores

    b = HFBackend(str(tiny_random_model_dir))
    head = "Is the answer right? 12+30=42 yes. "  # shared by every prompt, as a judge's instructions are
    prompts, forms = [head + "3+4=7", head + "5+5=11 no", head + "9"], ["1", "a5+", "y"]
    lengths = []
    hook = b.model.register_forward_pre_hook(
        lambda _m, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    try:
        got = _next_token_scores(b, prompts, forms)
    finally:
        hook.remove()
    assert lengths[0] == len(head) and len([n for n in lengths if n >= len(head)]) == 1  # encoded once
    want = b.loglikelihood([p for p in prompts for _ in forms], [f for _ in prompts for f in forms])
    assert got == pytest.approx(want, abs=1e-4)
