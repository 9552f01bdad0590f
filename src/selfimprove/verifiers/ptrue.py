"""Self-evaluation from the model's own probabilities: P(True), P(IK) and verbalised confidence.

Kadavath et al. 2022, "Language Models (Mostly) Know What They Know" (arXiv:2207.05221):

- **P(True)**: after the model proposes an answer, ask whether it is correct and read the probability of
  "yes". With ``backend.loglikelihood`` the verdict continuations are scored in every surface form ("Yes",
  " yes", "YES" …; a task's own trained format scores its own two) and P(True) = p(yes) / (p(yes) + p(no));
  when yes and no together get less than ``min_mass`` of the probability, the verdict is unscored
  (``verifiers.choice``). Without it (an OpenAI-compatible server), one greedy generation of
  ``max_tokens`` tokens (1 by default, enough for a BPE " Yes") is read: P(True) = exp(Σ logprob) when it says
  yes, 1 − exp(Σ logprob) when it says no (yes and no taken as the only answers); anything else is
  unparseable.
- **P(IK)**: the same yes/no probability asked *before* answering ("do you know the answer?"), one per
  question; every candidate of a question gets the same verdict.
- **Verbalised confidence**: the model is asked for a number from 0 to 100; ``parse_confidence`` reads it, and
  anything it cannot read is ``None`` (a verdict with ``correct=None``, counted, never a silent 0).

Every verifier here offers ``assess(examples, texts) -> Assessment``: the verdicts *and* the steps it took, so
a strategy records the calls and tokens verification cost. A scored continuation (log-likelihood) is recorded
as a ``Completion`` whose text is the continuation, with its token counts, so the cost metrics see the work;
its log-likelihood is in ``Step.info['loglikelihoods']``. ``verify(examples, answers)`` (the Verifier
contract) judges bare answer strings; strategies judge whole completions through ``assess``, as the paper
does.

Not covered: the paper's trained P(IK) value head (P(IK) here is prompted), showing several of the model's
own samples before asking P(True), and few-shot verification prompts.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence

from ..backends.base import greedy, require
from ..prompts import formats
from ..records import Completion, Example, Step, Verdict
from .base import Assessment, verify_answers
from .choice import MIN_MASS, choice_step, choose

METHODS = ("auto", "loglikelihood", "generate")


class PTrue:
    """P(True): probability that the model answers "yes" when asked whether a candidate is correct."""

    name = "ptrue"
    uses_gold = False

    def __init__(self, backend, task, threshold: float = 0.5, method: str = "auto", max_tokens: int = 1,
                 min_mass: float = MIN_MASS) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if method == "auto":
            method = "loglikelihood" if backend.capabilities.loglikelihood else "generate"
        require(backend, "loglikelihood" if method == "loglikelihood" else "logprobs")
        self.backend, self.task, self.fmt = backend, task, formats(task)
        self.threshold, self.method, self.max_tokens, self.min_mass = threshold, method, max_tokens, min_mass

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
        pairs = [(i, t) for i, row in enumerate(texts) for t in row]
        prompts = [self.fmt.verify(examples[i], t) for i, t in pairs]
        results = yes_probability(self.backend, self.fmt, prompts, self.method, self.max_tokens,
                                  self.min_mass)
        verdicts: list[list[Verdict]] = [[] for _ in examples]
        steps: list[list[Step]] = [[] for _ in examples]
        for (i, _), (p, step) in zip(pairs, results):
            v = self._verdict(p, step)
            verdicts[i].append(v)
            steps[i].append(_with_verdict(step, v))
        return Assessment(verdicts, steps)

    def verify(self, examples: Sequence[Example], answers: Sequence[Sequence[str | None]]
               ) -> list[list[Verdict]]:
        return verify_answers(self, examples, answers)

    def _verdict(self, p: float | None, step: Step) -> Verdict:
        if p is None:
            return Verdict(score=None, correct=None, reason=step.info["why"])
        return Verdict(score=p, correct=p >= self.threshold, reason=f"P(True)={p:.3f}")


class PIK(PTrue):
    """P(IK): probability of "yes, I know the answer", asked before answering; one value per question."""

    name = "pik"

    def ask(self, examples: Sequence[Example]) -> tuple[list[Verdict], list[Step]]:
        """One verdict and one step per example."""
        fmt = dataclasses.replace(self.fmt, verify_think=None)  # asked before answering: no rationale
        results = yes_probability(self.backend, fmt, [self.fmt.pik(e) for e in examples], self.method,
                                  self.max_tokens, self.min_mass)
        verdicts = [self._verdict(p, s) for p, s in results]
        steps = [_with_verdict(s, v, kind="pik") for (_, s), v in zip(results, verdicts)]
        return verdicts, steps

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
        verdicts, steps = self.ask(examples)
        return Assessment([[v] * len(row) for v, row in zip(verdicts, texts)], [[s] for s in steps])


class VerbalConfidence:
    """Verbalised confidence: the model states a number from 0 to 100; unparseable is None."""

    name = "verbal-confidence"
    uses_gold = False

    def __init__(self, backend, task, threshold: float = 0.5, max_tokens: int = 8) -> None:
        self.backend, self.task, self.fmt = backend, task, formats(task)
        self.threshold, self.max_tokens = threshold, max_tokens

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
        pairs = [(i, t) for i, row in enumerate(texts) for t in row]
        prompts = [self.fmt.confidence(examples[i], t) for i, t in pairs]
        comps = greedy(self.backend, prompts, self.max_tokens, ("\n",))
        verdicts: list[list[Verdict]] = [[] for _ in examples]
        steps: list[list[Step]] = [[] for _ in examples]
        for (i, _), prompt, c in zip(pairs, prompts, comps):
            conf = parse_confidence(c.text) if c.ok else None
            if conf is None:
                why = f"request failed: {c.error}" if not c.ok else f"unparseable confidence: {c.text[:40]!r}"
                v = Verdict(score=None, correct=None, reason=why)
            else:
                v = Verdict(score=conf, correct=conf >= self.threshold, reason=f"confidence={conf:.2f}")
            verdicts[i].append(v)
            steps[i].append(Step(kind="verify", prompt=prompt, completions=(c,), verdicts=(v,),
                                 info={"method": "verbal", "confidence": conf}))
        return Assessment(verdicts, steps)

    def verify(self, examples: Sequence[Example], answers: Sequence[Sequence[str | None]]
               ) -> list[list[Verdict]]:
        return verify_answers(self, examples, answers)


_CONF = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(%?)")


def parse_confidence(text: str | None) -> float | None:
    """A confidence in [0, 1] from the first number of ``text``: '85', '85%' → 0.85; '0.85' → 0.85 (a decimal
    at most 1 is read as a probability); anything else (no number, over 100) → None."""
    m = _CONF.search(text or "")
    if m is None:
        return None
    value, percent = float(m.group(1)), bool(m.group(2))
    if not percent and "." in m.group(1) and value <= 1.0:
        return value
    return value / 100.0 if value <= 100.0 else None


# ---- shared machinery -------------------------------------------------------------------------------------


def yes_probability(backend, fmt, prompts: Sequence[str], method: str, max_tokens: int,
                    min_mass: float = MIN_MASS) -> list[tuple[float | None, Step]]:
    """P(yes) after each prompt, with the step that measured it (``info['why']`` says why P is None).

    By log-likelihood, P(yes) = p(yes) / (p(yes) + p(no)), each summed over the format's forms
    (``fmt.yes_no``: "Yes", " yes", "YES" … for the generic format), with no reading when their total is
    below ``min_mass`` (``verifiers.choice``)."""
    if not prompts:
        return []
    if getattr(fmt, "verify_think", None):
        return _after_rationale(backend, fmt, prompts, method, max_tokens, min_mass)
    if method == "loglikelihood":
        yes, no = fmt.yes_no
        choices, comps = choose(backend, prompts, [("yes", yes), ("no", no)], min_mass)
        return [(None if ch.probs is None else ch.probs["yes"],
                 choice_step("verify", prompt, ch, cs, p_true=None if ch.probs is None else ch.probs["yes"],
                             why=ch.why))
                for prompt, ch, cs in zip(prompts, choices, comps)]
    out = []
    for prompt, c in zip(prompts, greedy(backend, prompts, max_tokens, ("\n",))):
        said = fmt.parse_verdict(c.text) if c.ok else None
        q = math.exp(c.sum_logprob) if c.sum_logprob is not None else None
        p = None if said is None or q is None else (q if said else 1.0 - q)
        why = (f"request failed: {c.error}" if not c.ok else f"unparseable verdict: {c.text[:40]!r}"
               if said is None else "no logprobs")
        out.append((p, Step(kind="verify", prompt=prompt, completions=(c,),
                            info={"method": method, "p_true": p, "said": said, "why": why})))
    return out


def _after_rationale(backend, fmt, prompts: Sequence[str], method: str, max_tokens: int, min_mass: float
                     ) -> list[tuple[float | None, Step]]:
    """P(yes) for a verify format that reasons first: generate the rationale greedily, cut it at the
    ``fmt.verify_think`` marker, then read P(yes) after ``prompt + rationale + marker``. The whole greedy
    completion is the step's first completion (its tokens count in the cost). No stop string is used: a
    backend reports a stop string and an end-of-sequence alike, and only a rationale that wrote the marker is
    judged; one that did not (ended, or cut by the token budget), or a failed request, gives P = None with the
    reason."""
    from ..prompts import THINK_TOKENS

    marker = fmt.verify_think
    rationales = greedy(backend, prompts, THINK_TOKENS, ())
    ready = [i for i, c in enumerate(rationales) if c.ok and marker in c.text]
    cut = {i: rationales[i].text.split(marker, 1)[0] for i in ready}
    plain = dataclasses.replace(fmt, verify_think=None)
    judged = dict(zip(ready, yes_probability(backend, plain, [prompts[i] + cut[i] + marker for i in ready],
                                             method, max_tokens, min_mass)))
    out = []
    for i, (prompt, c) in enumerate(zip(prompts, rationales)):
        if i in judged:
            p, step = judged[i]
            info = {**step.info, "rationale": cut[i]}
            out.append((p, Step(kind="verify", prompt=prompt, completions=(c, *step.completions), info=info)))
        else:
            why = (f"request failed: {c.error}" if not c.ok else f"the rationale never wrote {marker!r} "
                   f"(finish: {c.finish_reason}, {c.completion_tokens} of {THINK_TOKENS} tokens)")
            out.append((None, Step(kind="verify", prompt=prompt, completions=(c,),
                                   info={"method": method, "p_true": None, "rationale": c.text, "why": why})))
    return out


def scored(backend, prompt: str, continuation: str) -> Completion:
    """A scored (not sampled) continuation as a Completion, so that cost metrics count its tokens."""
    n_prompt = token_count(backend, prompt)
    return Completion(text=continuation, prompt_tokens=n_prompt,
                      completion_tokens=max(token_count(backend, prompt + continuation) - n_prompt, 1))


def token_count(backend, text: str) -> int:
    """Tokens in ``text`` by the backend's tokenizer where it exposes one (``encode_prompt``), else
    characters."""
    encode = getattr(backend, "encode_prompt", None)
    return len(encode(text)) if encode is not None else len(text)


def _with_verdict(step: Step, v: Verdict, kind: str = "verify") -> Step:
    info = {k: x for k, x in step.info.items() if k != "why"}
    return Step(kind=kind, prompt=step.prompt, completions=step.completions, verdicts=(v,), info=info)
