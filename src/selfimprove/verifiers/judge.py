"""LLM-as-a-judge verifiers: the model grades responses (its own or others') by prompting.

- **Pointwise rubric** — the additive 5-point rubric of Yuan et al. 2024, "Self-Rewarding Language Models"
  (arXiv:2401.10020): the judge justifies and ends with "Score: <0-5>". Verdict score = points / 5;
  ``correct`` = points ≥ ``pass_points``.
- **Pairwise** — the judge picks A or B, asked in *both orders* to control position bias ("On Large Language
  Models' Selection Bias in Multi-Choice Questions", arXiv:2309.03882); a pair is ``consistent`` when both
  orders prefer the same response. As a Verifier, each candidate's score is its share of points over all
  pairwise comparisons in its pool (a consistent win 1, an inconsistent or undecided pair ½ to each), the
  round-robin form of SPO's win rate (arXiv:2401.04056); ``correct`` = score ≥ ½.
- **Checklist** — TICK (Cook et al. 2024, arXiv:2410.03608): the model writes an instruction-specific
  checklist of YES/NO questions, then answers it for each response; score = fraction of YES, ``correct`` =
  score ≥ ``pass_fraction``.

Two ways to read a judge (``method``): ``generate`` — the judge writes its judgement and the score, letter or
answers are parsed from the text (the papers' form; the default, which the training loop's Self-Rewarding
judge and Meta-Rewarding's written judgements use); ``loglikelihood`` — the rubric judge's score is the
expected value of the distribution over the score tokens "0".."5" and the pairwise judge's preference is
P("A") vs P("B"), each summed over surface forms and with no reading when the allowed answers get less than
``min_mass`` of the probability (``verifiers.choice``; as G-Eval, Liu et al. 2023, arXiv 2303.16634). A small
chat model rarely writes "Score: N" when asked (it continues the conversation instead), so best-of-n asks for
``auto``: log-likelihood where the backend offers it. The checklist judge only generates.

Failure is data: output without a readable score, letter or complete set of answers is a verdict with
``score=None, correct=None`` and the reason, counted by ``count_unparseable``. Judges never see gold answers.

Not covered: reference-guided judging, meta-judging (arXiv:2407.19594), self-preference and self-recognition
checks (arXiv:2404.13076, arXiv:2502.04313), STICK refinement with the checklist (Self-Refine with this judge
as feedback approximates it).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from ..backends.base import greedy
from ..prompts import (
    CHECKLIST_ANSWER,
    CHECKLIST_MAKE,
    PAIRWISE,
    PAIRWISE_PREFIX,
    RUBRIC,
    RUBRIC_PREFIX,
    RUBRIC_SCORE,
    ask_with_prefix,
    question_text,
)
from ..records import Example, Step, Verdict
from .base import Assessment, verify_answers
from .choice import MIN_MASS, choice_step, choose

JUDGE_METHODS = ("generate", "loglikelihood", "auto")
POINTS = tuple(str(k) for k in range(6))
"""The rubric's score tokens, 0..5: single characters, so no option's form is a prefix of another's."""

_SCORE = re.compile(r"score\s*[:=]?\s*\**\s*([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)
_LETTER = re.compile(r"\b(?:response\s*)?([AB])\b")
_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*(.+?)\s*$")
_ANSWER = re.compile(r"^\s*(\d+)\s*[.):]?\s*(yes|no)\b", re.IGNORECASE)


def count_unparseable(verdicts: Sequence[Sequence[Verdict]]) -> int:
    """Verdicts the judge left undecided (``correct`` None)."""
    return sum(v.correct is None for row in verdicts for v in row)


class RubricJudge:
    """Pointwise additive 5-point rubric (Self-Rewarding LMs)."""

    name = "rubric"
    uses_gold = False

    def __init__(self, backend, task, pass_points: int = 4, max_tokens: int = 256, method: str = "generate",
                 min_mass: float = MIN_MASS) -> None:
        if not 0 <= pass_points <= 5:
            raise ValueError(f"pass_points must be in 0..5, got {pass_points}")
        self.backend, self.task, self.pass_points, self.max_tokens = backend, task, pass_points, max_tokens
        self.method, self.min_mass = judge_method(method, backend), min_mass

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
        if self.method == "loglikelihood":
            return self._assess_by_probability(examples, texts)
        pairs = [(i, t) for i, row in enumerate(texts) for t in row]
        prompts = [RUBRIC.format(question=examples[i].question, response=t.strip()) for i, t in pairs]
        verdicts: list[list[Verdict]] = [[] for _ in examples]
        steps: list[list[Step]] = [[] for _ in examples]
        for (i, _), prompt, c in zip(pairs, prompts, greedy(self.backend, prompts, self.max_tokens, ())):
            points = parse_score(c.text) if c.ok else None
            if points is None:
                v = Verdict(score=None, correct=None, reason="request failed" if not c.ok else
                            f"unparseable score: {c.text[-60:]!r}")
            else:
                v = Verdict(score=points / 5.0, correct=points >= self.pass_points,
                            reason=f"Score: {points:g}")
            verdicts[i].append(v)
            steps[i].append(Step(kind="judge", prompt=prompt, completions=(c,), verdicts=(v,),
                                 info={"judge": "rubric", "points": points}))
        return Assessment(verdicts, steps)

    def _assess_by_probability(self, examples: Sequence[Example],
                               texts: Sequence[Sequence[str]]) -> Assessment:
        """Expected points under the distribution over the score tokens 0..5 (one batched scoring call)."""
        pairs = [(i, t) for i, row in enumerate(texts) for t in row]
        prompts = [ask_with_prefix(RUBRIC_SCORE.format(question=question_text(self.task, examples[i]),
                                                       response=t.strip()), RUBRIC_PREFIX) for i, t in pairs]
        choices, comps = choose(self.backend, prompts, [(k, (k, " " + k)) for k in POINTS], self.min_mass)
        verdicts: list[list[Verdict]] = [[] for _ in examples]
        steps: list[list[Step]] = [[] for _ in examples]
        for (i, _), prompt, ch, cs in zip(pairs, prompts, choices, comps):
            points = None if ch.probs is None else sum(int(k) * p for k, p in ch.probs.items())
            v = (Verdict(score=None, correct=None, reason=ch.why) if points is None else
                 Verdict(score=points / 5.0, correct=points >= self.pass_points,
                         reason=f"expected score {points:.2f}"))
            verdicts[i].append(v)
            steps[i].append(dataclasses.replace(choice_step("judge", prompt, ch, cs, judge="rubric",
                                                            points=points),
                                                verdicts=(v,)))
        return Assessment(verdicts, steps)

    def verify(self, examples, answers):
        return verify_answers(self, examples, answers)


def judge_method(method: str, backend) -> str:
    """'generate' or 'loglikelihood' from a judge's ``method``; 'auto' is log-likelihood where the backend
    offers it."""
    if method not in JUDGE_METHODS:
        raise ValueError(f"method must be one of {', '.join(JUDGE_METHODS)}, got {method!r}")
    if method == "auto":
        return "loglikelihood" if backend.capabilities.loglikelihood else "generate"
    if method == "loglikelihood":
        from ..backends.base import require

        require(backend, "loglikelihood")
    return method


def parse_score(text: str) -> float | None:
    """The last 'Score: N' with 0 ≤ N ≤ 5, or None."""
    found = _SCORE.findall(text or "")
    if not found:
        return None
    value = float(found[-1])
    return value if 0.0 <= value <= 5.0 else None


@dataclass(frozen=True)
class PairResult:
    """One pair judged in both orders."""

    preferred: int | None
    """0 (the first response), 1 (the second) when both orders agree; None when they disagree or one is
    unreadable."""
    consistent: bool | None
    """Both orders prefer the same response; None when either order's output could not be read."""
    votes: tuple[int | None, int | None]
    """The response each order preferred (in the caller's numbering), None where unreadable."""
    p_first: float | None = None
    """By log-likelihood: the probability that the first response is better, averaged over both orders (so
    a judge that always names the first position shown gets 0.5); None when generated or unreadable."""


class PairwiseJudge:
    """Pairwise preference, asked in both orders, with a consistency flag."""

    name = "pairwise"
    uses_gold = False

    def __init__(self, backend, task, max_tokens: int = 4, method: str = "generate",
                 min_mass: float = MIN_MASS) -> None:
        self.backend, self.task, self.max_tokens = backend, task, max_tokens
        self.method, self.min_mass = judge_method(method, backend), min_mass

    def compare(self, examples: Sequence[Example], first: Sequence[str], second: Sequence[str]
                ) -> tuple[list[PairResult], list[list[Step]]]:
        """Judge ``first[i]`` against ``second[i]`` for ``examples[i]``: one batched call of 2 prompts
        each."""
        prompts = []
        for ex, a, b in zip(examples, first, second, strict=True):
            for x, y in ((a, b), (b, a)):
                prompts.append(ask_with_prefix(PAIRWISE.format(question=ex.question, first=x.strip(),
                                                               second=y.strip()), PAIRWISE_PREFIX))
        if self.method == "loglikelihood":
            return self._compare_by_probability(prompts)
        comps = greedy(self.backend, prompts, self.max_tokens, ("\n",))
        results, steps = [], []
        for k in range(len(examples)):
            (p1, c1), (p2, c2) = (prompts[2 * k], comps[2 * k]), (prompts[2 * k + 1], comps[2 * k + 1])
            v1, v2 = _letter(c1.text) if c1.ok else None, _letter(c2.text) if c2.ok else None
            v2 = None if v2 is None else 1 - v2  # the second order shows the responses swapped
            consistent = None if v1 is None or v2 is None else v1 == v2
            results.append(PairResult(preferred=v1 if consistent else None, consistent=consistent,
                                      votes=(v1, v2)))
            steps.append([Step(kind="judge", prompt=p, completions=(c,),
                               info={"judge": "pairwise", "order": o, "preferred": v})
                          for o, p, c, v in (("ab", p1, c1, v1), ("ba", p2, c2, v2))])
        return results, steps

    def _compare_by_probability(self, prompts: list[str]) -> tuple[list[PairResult], list[list[Step]]]:
        """P(A) vs P(B) in both orders; the second order shows the responses swapped."""
        choices, comps = choose(self.backend, prompts, [("A", ("A", " A")), ("B", ("B", " B"))],
                                self.min_mass)
        results, steps = [], []
        for k in range(len(prompts) // 2):
            c1, c2 = choices[2 * k], choices[2 * k + 1]
            p1 = None if c1.probs is None else c1.probs["A"]  # first shown first
            p2 = None if c2.probs is None else c2.probs["B"]  # first shown second
            v1 = None if p1 is None or p1 == 0.5 else int(p1 < 0.5)
            v2 = None if p2 is None or p2 == 0.5 else int(p2 < 0.5)
            consistent = None if v1 is None or v2 is None else v1 == v2
            p_first = None if p1 is None or p2 is None else (p1 + p2) / 2
            results.append(PairResult(preferred=v1 if consistent else None, consistent=consistent,
                                      votes=(v1, v2),
                                      p_first=p_first))
            steps.append([choice_step("judge", prompts[2 * k + o], ch, comps[2 * k + o], judge="pairwise",
                                      order=("ab", "ba")[o], preferred=v, why=ch.why)
                          for o, ch, v in ((0, c1, v1), (1, c2, v2))])
        return results, steps

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
        """Round-robin over each pool: a pair read by probability gives the first ``p_first`` points and the
        second the rest; a generated pair gives a consistent winner 1 and an inconsistent pair ½ each."""
        jobs = [(i, a, b) for i, row in enumerate(texts) for a, b in combinations(range(len(row)), 2)]
        shown = [dataclasses.replace(e, question=question_text(self.task, e)) for e in examples]
        results, pair_steps = self.compare([shown[i] for i, _, _ in jobs], [texts[i][a] for i, a, _ in jobs],
                                           [texts[i][b] for i, _, b in jobs])
        points = [[0.0] * len(row) for row in texts]
        decided = [[0] * len(row) for row in texts]
        steps: list[list[Step]] = [[] for _ in examples]
        for (i, a, b), r, s in zip(jobs, results, pair_steps):
            steps[i].extend(s)
            if r.p_first is not None:
                decided[i][a] += 1
                decided[i][b] += 1
                points[i][a] += r.p_first
                points[i][b] += 1.0 - r.p_first
                continue
            if r.consistent is None:
                continue
            decided[i][a] += 1
            decided[i][b] += 1
            if r.preferred is None:
                points[i][a] += 0.5
                points[i][b] += 0.5
            else:
                points[i][(a, b)[r.preferred]] += 1.0
        verdicts = []
        for i, row in enumerate(texts):
            out = []
            for j in range(len(row)):
                if len(row) == 1:
                    out.append(Verdict(score=None, correct=None, reason="no rival to compare with"))
                elif decided[i][j] == 0:
                    out.append(Verdict(score=None, correct=None, reason="no readable comparison"))
                else:
                    s = points[i][j] / decided[i][j]
                    out.append(Verdict(score=s, correct=s >= 0.5,
                                       reason=f"{points[i][j]:g} points in {decided[i][j]} comparisons"))
            verdicts.append(out)
        return Assessment(verdicts, steps)

    def verify(self, examples, answers):
        return verify_answers(self, examples, answers)


def _letter(text: str) -> int | None:
    m = _LETTER.search(text or "")
    return None if m is None else "AB".index(m.group(1).upper())


class ChecklistJudge:
    """TICK: a generated YES/NO checklist per instruction; score = fraction of YES."""

    name = "checklist"
    uses_gold = False

    def __init__(self, backend, task, pass_fraction: float = 1.0, max_tokens: int = 256,
                 checklist: Sequence[str] | None = None) -> None:
        if not 0.0 <= pass_fraction <= 1.0:
            raise ValueError(f"pass_fraction must be in [0, 1], got {pass_fraction}")
        self.backend, self.task, self.max_tokens = backend, task, max_tokens
        self.pass_fraction = pass_fraction
        self.checklist = None if checklist is None else tuple(checklist)
        """A fixed checklist for every example; None = the model writes one per example."""

    def make_checklists(self, examples: Sequence[Example]) -> tuple[list[list[str]], list[Step]]:
        """One checklist (list of questions) and one step per example; a fixed checklist costs no call."""
        if self.checklist is not None:
            return [list(self.checklist) for _ in examples], []
        prompts = [CHECKLIST_MAKE.format(question=e.question) for e in examples]
        comps = greedy(self.backend, prompts, self.max_tokens, ("\n\n",))
        lists = [parse_checklist(c.text) if c.ok else [] for c in comps]
        return lists, [Step(kind="checklist", prompt=p, completions=(c,), info={"checklist": q})
                       for p, c, q in zip(prompts, comps, lists)]

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
        lists, make_steps = self.make_checklists(examples)
        steps: list[list[Step]] = [[s] for s in make_steps] or [[] for _ in examples]
        jobs = [(i, t) for i, row in enumerate(texts) for t in row if lists[i]]
        prompts = [CHECKLIST_ANSWER.format(question=examples[i].question, response=t.strip(),
                                           checklist="\n".join(f"{k}. {q}"
                                                               for k, q in enumerate(lists[i], 1)))
                   for i, t in jobs]
        answered = iter(zip(prompts, greedy(self.backend, prompts, self.max_tokens, ("\n\n",))))
        verdicts = []
        for i, row in enumerate(texts):
            out = []
            for _ in row:
                if not lists[i]:
                    out.append(Verdict(score=None, correct=None, reason="no checklist could be read"))
                    continue
                prompt, c = next(answered)
                yes = parse_checklist_answers(c.text, len(lists[i])) if c.ok else None
                if yes is None:
                    v = Verdict(score=None, correct=None, reason="request failed" if not c.ok else
                                f"not every one of {len(lists[i])} questions answered")
                else:
                    frac = sum(yes) / len(yes)
                    v = Verdict(score=frac, correct=frac >= self.pass_fraction,
                                reason=f"{sum(yes)}/{len(yes)} YES")
                out.append(v)
                steps[i].append(Step(kind="judge", prompt=prompt, completions=(c,), verdicts=(v,),
                                     info={"judge": "checklist", "answers": yes}))
            verdicts.append(out)
        return Assessment(verdicts, steps)

    def verify(self, examples, answers):
        return verify_answers(self, examples, answers)


def parse_checklist(text: str) -> list[str]:
    """Checklist questions: lines that start with '-', '*' or a number, or that end with '?'."""
    out = []
    for line in (text or "").splitlines():
        m = _ITEM.match(line)
        item = m.group(1) if m else line.strip() if line.strip().endswith("?") else ""
        if item:
            out.append(item)
    return out


def parse_checklist_answers(text: str, n: int) -> list[bool] | None:
    """YES/NO for questions 1..n from lines like '2. YES'; None unless every question got an answer."""
    got: dict[int, bool] = {}
    for line in (text or "").splitlines():
        m = _ANSWER.match(line)
        if m and 1 <= int(m.group(1)) <= n:
            got.setdefault(int(m.group(1)), m.group(2).lower() == "yes")
    return [got[k] for k in range(1, n + 1)] if len(got) == n else None
