"""Self-correction at inference time: intrinsic, confidence-gated, and oracle-triggered (an upper bound).

- ``self-correct``: intrinsic self-correction as measured by Huang et al. 2024, "Large Language Models Cannot
  Self-Correct Reasoning Yet" (arXiv:2310.01798), under the fair protocol of "Large Language Models have
  Intrinsic Self-Correction Ability" (arXiv:2406.15673): temperature 0, and the *same* review prompt for every
  example, which never hints that the answer is wrong ("if it is correct, repeat it; if it contains a mistake,
  correct it"). The final answer is the last review's answer, whatever it is (None when unparseable).
- ``gated-correct``: confidence-gated correction in the manner of "The ART of LLM Refinement: Ask, Refine, and
  Trust" (arXiv:2311.07961) and the If-or-Else prompt of "Confidence Matters: Revisiting Intrinsic
  Self-Correction Capabilities of Large Language Models" (arXiv:2402.12563): the model's P(True) for its
  answer decides whether to revise (only when P(True) < ``threshold``; an unreadable P(True) also revises);
  the trust step then keeps the revision only if its P(True) is higher than the original's. Confidence =
  P(True) of the final answer.
- ``oracle-correct``: oracle-feedback correction ("Self-Reflection in LLM Agents: Effects on Problem-Solving
  Performance", arXiv:2405.06682; the "oracle" setting that arXiv:2310.01798 shows inflates gains):
  the gold answer decides which answers are wrong, and only those are revised with a prompt that says so.
  THE ONLY STRATEGY THAT READS GOLD ANSWERS: its name contains "oracle", its class has ``uses_gold = True``
  and every trace carries ``info['oracle'] = True``, so reports label it. An unparseable answer counts as
  wrong; an example without a gold answer is left as it is (``info['oracle_skipped']``).

Every step is one batched call over the examples it concerns. ``initial_answer`` is the first greedy answer,
``final_answer`` the answer after correction, so the correction metrics (c→w, w→c) see every pair.

Not covered: ART's "Ask" sub-questions and its separately trained decision model, multi-agent debate,
corrections with tool or execution feedback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ..prompts import formats
from ..records import Example, SamplingParams, Step, Trace
from ..verifiers.ptrue import METHODS, PTrue
from .base import generate_step, make_trace


@dataclass(frozen=True)
class SelfCorrect:
    """Intrinsic self-correction under the fair protocol: the same neutral review prompt, temperature 0."""

    rounds: int = 1
    """Review rounds (each reviews the previous round's answer)."""
    max_tokens: int = 256
    """Upper bound on tokens per answer or review."""
    name = "self-correct"

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        fmt = formats(task)
        params = SamplingParams(n=1, temperature=0.0, max_tokens=self.max_tokens)
        first = generate_step(backend, task, [task.prompt(e) for e in examples], params)
        steps = [[s] for s in first]
        current = list(first)
        for r in range(self.rounds):
            prompts = [fmt.correct(e, s.completions[0].text) for e, s in zip(examples, current)]
            current = [dataclasses.replace(s, info={"round": r})
                       for s in generate_step(backend, task, prompts, params, kind="correct")]
            for st, s in zip(steps, current):
                st.append(s)
        return [make_trace(e, self.name, st, initial_answer=s0.answers[0], final_answer=s.answers[0],
                           rounds=self.rounds, samples=1 + self.rounds)
                for e, st, s0, s in zip(examples, steps, first, current)]


@dataclass(frozen=True)
class GatedCorrect:
    """Revise only when P(True) < threshold; keep the revision only if its P(True) is higher (ART's trust)."""

    threshold: float = 0.5
    """Revise answers whose P(True) is below this."""
    method: str = "auto"
    """How P(True) is read: 'auto', 'loglikelihood' or 'generate' (see verifiers.ptrue)."""
    max_tokens: int = 256
    """Upper bound on tokens per answer or revision."""
    name = "gated-correct"

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        fmt, ptrue = formats(task), PTrue(backend, task, threshold=self.threshold, method=self.method)
        params = SamplingParams(n=1, temperature=0.0, max_tokens=self.max_tokens)
        first = generate_step(backend, task, [task.prompt(e) for e in examples], params)
        steps = [[s] for s in first]
        judged = ptrue.assess(examples, [[s.completions[0].text] for s in first])
        p0 = [vs[0].score for vs in judged.verdicts]
        for st, vst in zip(steps, judged.steps):
            st.extend(vst)
        todo = [i for i, p in enumerate(p0) if p is None or p < self.threshold]
        revised = generate_step(backend, task, [fmt.correct(examples[i], first[i].completions[0].text)
                                                for i in todo], params, kind="correct") if todo else []
        rejudged = ptrue.assess([examples[i] for i in todo], [[s.completions[0].text] for s in revised])
        p1: list[float | None] = [None] * len(examples)
        final = [s.answers[0] for s in first]
        replaced = [False] * len(examples)
        for i, s, vs, vst in zip(todo, revised, rejudged.verdicts, rejudged.steps):
            steps[i].append(s)
            steps[i].extend(vst)
            p1[i] = vs[0].score
            # Trust: the revision replaces the answer only when the model believes it more.
            replaced[i] = p1[i] is not None and (p0[i] is None or p1[i] > p0[i])
            if replaced[i]:
                final[i] = s.answers[0]
        traces = []
        for i, e in enumerate(examples):
            trust = Step(kind="trust", info={"p_true_initial": p0[i], "p_true_revised": p1[i],
                                             "revised": i in todo, "replaced": replaced[i]})
            traces.append(make_trace(e, self.name, [*steps[i], trust], initial_answer=first[i].answers[0],
                                     final_answer=final[i], confidence=p1[i] if replaced[i] else p0[i],
                                     gate="revised" if i in todo else "kept", replaced=replaced[i],
                                     p_true_initial=p0[i], p_true_revised=p1[i],
                                     samples=1 + (i in todo)))
        return traces


@dataclass(frozen=True)
class OracleCorrect:
    """ORACLE: revise only the answers the gold label says are wrong (an upper bound, labelled 'oracle')."""

    rounds: int = 1
    """Correction rounds; each revises the answers still wrong."""
    max_tokens: int = 256
    """Upper bound on tokens per answer or revision."""
    name = "oracle-correct"
    uses_gold = True

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        fmt = formats(task)
        params = SamplingParams(n=1, temperature=0.0, max_tokens=self.max_tokens)
        first = generate_step(backend, task, [task.prompt(e) for e in examples], params)
        steps = [[s] for s in first]
        text = [s.completions[0].text for s in first]
        answer = [s.answers[0] for s in first]
        revisions = [0] * len(examples)
        for r in range(self.rounds):
            # The oracle: gold decides who is revised. An unparseable answer counts as wrong.
            todo = [i for i, e in enumerate(examples)
                    if e.answer is not None and task.check(e, answer[i]) is not True]
            if not todo:
                break
            prompts = [fmt.oracle_correct(examples[i], text[i]) for i in todo]
            for i, s in zip(todo, generate_step(backend, task, prompts, params, kind="correct")):
                steps[i].append(dataclasses.replace(s, info={"round": r, "oracle_trigger": True}))
                text[i], answer[i] = s.completions[0].text, s.answers[0]
                revisions[i] += 1
        return [make_trace(e, self.name, st, initial_answer=s0.answers[0], final_answer=a, oracle=True,
                           oracle_skipped=e.answer is None, revisions=n, samples=1 + n)
                for e, st, s0, a, n in zip(examples, steps, first, answer, revisions)]
