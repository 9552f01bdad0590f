"""Step values: how good is a partial solution? Verifier-like objects that every search (beam, MCTS, DVTS)
uses.

Each value offers ``evaluate(partials, seed) -> Valuation``: batch in, batch out, one value per partial
solution (None when it cannot decide, with the reason), its parts, and the model calls it made (their tokens
count in the search's cost). The values:

- ``likelihood``: the generation probability of the path, length-normalised: exp(mean raw token
  log-probability of every step from the root). No model call.
- ``self-eval``: the model's own P(True) that the partial solution is right so far (Kadavath et al. 2022,
  "Language Models (Mostly) Know What They Know", arXiv 2207.05221), asked with the task's verify format on
  the partial text, through the same machinery as the ``ptrue`` verifier. A task whose verify prompt shows
  only a final answer (``StepFormat.judges_partial`` False) gets None for unfinished paths.
- ``xie``: likelihood^(1−λ) · self-eval^λ, the constraint of Xie et al. 2023, "Decomposition Enhances
  Reasoning via Self-Evaluation Guided Decoding" (arXiv 2305.00633); where self-eval is None, likelihood alone
  (recorded).
- ``rollout``: m completions sampled from the partial solution to the end; the value is the share whose final
  answer matches the majority answer over every answer the search has reached for the example so far (earlier
  rollouts and finished paths, ``Partial.pool``) and this call's rollouts (no gold; a finished path counts as
  its own single rollout). As in Math-Shepherd (Wang et al. 2024, "Math-Shepherd: Verify and
  Reinforce LLMs Step-by-step without Human Annotations", arXiv 2312.08935), but with a majority in place of
  the gold answer.
- ``rollout-gold``: the same share against the gold answer: it reads gold, so it is for building training
  labels only (``uses_gold``); the inference strategies refuse it.

- ``prm``: a trained process reward model's score of the partial solution (``verifiers/prm.py``; trained by
  ``training/prm.py`` on rollout labels), the last step's by default.

Not covered: values from a separate judge model, per-step (rather than per-path) likelihood.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..answers import majority
from ..chat import continue_reply
from ..prompts import formats
from ..records import Example, SamplingParams, Step
from ..tasks.steps import StepFormat
from .ptrue import yes_probability

VALUES = ("likelihood", "self-eval", "xie", "rollout", "rollout-gold", "prm")


@dataclass(frozen=True)
class Partial:
    """A partial solution to value: an example, its prompt, the steps so far and their generation log-prob."""

    example: Example
    prompt: str
    """The task's prompt for the example (the partial solution continues it)."""
    prefix: str
    """The steps so far, concatenated."""
    terminal: bool = False
    """The path is finished (its answer is ``answer``)."""
    answer: str | None = None
    """``task.extract(prefix)`` of a finished path."""
    logprob: float | None = None
    """Sum of raw token log-probabilities of every step of the path (None when unknown)."""
    tokens: int = 0
    """Tokens of the path's steps (the length that normalises ``logprob``)."""
    pool: tuple[str | None, ...] = ()
    """Answers the search already reached for this example (earlier rollouts and finished paths): the rollout
    value's majority is taken over them and this call's answers."""


@dataclass(frozen=True)
class Valuation:
    """Values of a batch of partial solutions, their parts and the model calls behind them."""

    values: list[float | None]
    parts: list[dict] = field(default_factory=list)
    """Per partial: the value's components (likelihood, self_eval, rollout answers, ...) and ``why`` if
    None."""
    steps: list[list[Step]] = field(default_factory=list)
    """Per partial: the model calls made to value it."""


class Likelihood:
    """exp(mean token log-probability of the path): the model's own generation probability,
    length-normalised."""

    name, uses_gold = "likelihood", False

    def evaluate(self, partials: Sequence[Partial], seed: int = 0) -> Valuation:
        values, parts = [], []
        for p in partials:
            v = math.exp(p.logprob / p.tokens) if p.logprob is not None and p.tokens > 0 else None
            values.append(v)
            parts.append({"likelihood": v} if v is not None else {"likelihood": None, "why": "no log-probs"})
        return Valuation(values, parts, [[] for _ in partials])


class SelfEval:
    """P(True) of the partial solution: the task's verify prompt on the text so far, P(yes) read as in
    ``ptrue``."""

    name, uses_gold = "self-eval", False

    def __init__(self, backend, task, steps: StepFormat, method: str = "auto", max_tokens: int = 1) -> None:
        from .ptrue import PTrue

        self.ptrue = PTrue(backend, task, method=method, max_tokens=max_tokens)  # checks capabilities
        self.backend, self.fmt, self.steps = backend, formats(task), steps

    def evaluate(self, partials: Sequence[Partial], seed: int = 0) -> Valuation:
        asked = [i for i, p in enumerate(partials) if p.prefix and (p.terminal or self.steps.judges_partial)]
        prompts = [self.fmt.verify(partials[i].example, partials[i].prefix) for i in asked]
        results = dict(zip(asked, yes_probability(self.backend, self.fmt, prompts, self.ptrue.method,
                                                  self.ptrue.max_tokens)))
        values, parts, steps = [], [], []
        for i, p in enumerate(partials):
            if i not in results:
                why = "empty partial solution" if not p.prefix else \
                    "the task's verify format judges only finished answers"
                values.append(None)
                parts.append({"self_eval": None, "why": why})
                steps.append([])
                continue
            v, step = results[i]
            values.append(v)
            parts.append({"self_eval": v} if v is not None else {"self_eval": None, "why": step.info["why"]})
            steps.append([Step(kind="step-eval", prompt=step.prompt, completions=step.completions,
                               info={k: x for k, x in step.info.items() if k != "why"})])
        return Valuation(values, parts, steps)


class XieCombined:
    """likelihood^(1−λ) · self-eval^λ (Xie et al. 2023, arXiv 2305.00633); likelihood alone where self-eval
    could not decide (recorded as ``self_eval`` None)."""

    name, uses_gold = "xie", False

    def __init__(self, backend, task, steps: StepFormat, lam: float = 0.5) -> None:
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {lam}")
        self.lam, self.likelihood = lam, Likelihood()
        self.self_eval = SelfEval(backend, task, steps) if lam > 0 else None

    def evaluate(self, partials: Sequence[Partial], seed: int = 0) -> Valuation:
        lik = self.likelihood.evaluate(partials)
        se = self.self_eval.evaluate(partials) if self.self_eval else Valuation([None] * len(partials), [{}] *
                                                                                 len(partials),
                                                                                 [[] for _ in partials])
        values, parts = [], []
        for a, b, pa, pb in zip(lik.values, se.values, lik.parts, se.parts):
            if a is None:
                v = b
            elif b is None:
                v = a
            else:
                v = a ** (1.0 - self.lam) * b ** self.lam
            values.append(v)
            parts.append({**pa, **pb, "lam": self.lam})
        return Valuation(values, parts, se.steps)


class Rollout:
    """Share of m rollouts from the partial solution whose answer matches the reference: the majority of every
    answer reached for the example (``Partial.pool`` and this call's rollouts; ``gold`` False) or the gold
    answer (``gold`` True: training labels only)."""

    uses_gold = False

    def __init__(self, backend, task, m: int = 4, temperature: float = 0.8, max_tokens: int = 256,
                 gold: bool = False) -> None:
        if m < 1:
            raise ValueError(f"rollouts m must be >= 1, got {m}")
        self.backend, self.task, self.m = backend, task, m
        self.temperature, self.max_tokens, self.gold = temperature, max_tokens, gold
        self.uses_gold = gold
        self.name = "rollout-gold" if gold else "rollout"

    def evaluate(self, partials: Sequence[Partial], seed: int = 0) -> Valuation:
        open_ = [i for i, p in enumerate(partials) if not p.terminal]
        params = SamplingParams(n=self.m, temperature=self.temperature, max_tokens=self.max_tokens,
                                stop=tuple(self.task.stop), seed=seed)
        chat = bool(getattr(self.backend.capabilities, "chat_template", False))
        prompts = {i: continue_reply(partials[i].prompt, partials[i].prefix, chat) for i in open_}
        batches = self.backend.generate([prompts[i] for i in open_], params) if open_ else []
        answers: list[list[str | None]] = [[p.answer] for p in partials]
        steps: list[list[Step]] = [[] for _ in partials]
        for i, comps in zip(open_, batches):
            p = partials[i]
            texts = self.task.extract_many([p.prefix + c.text for c in comps])
            answers[i] = [a if c.ok else None for a, c in zip(texts, comps)]
            steps[i] = [Step(kind="rollout", prompt=prompts[i], completions=tuple(comps),
                             answers=tuple(answers[i]))]
        reference = self._references(partials, answers)
        values, parts = [], []
        for p, ans in zip(partials, answers):
            ref = reference[p.example.id]
            if ref is None:
                values.append(None)
                parts.append({"rollout_answers": ans, "why": "no parseable answer to compare with"})
                continue
            v = sum(self.task.equivalent(a, ref) for a in ans) / len(ans)
            values.append(v)
            parts.append({"rollout": v, "rollout_answers": ans, "reference": "gold" if self.gold else ref})
        return Valuation(values, parts, steps)

    def _references(self, partials, answers) -> dict[str, str | None]:
        if self.gold:
            return {p.example.id: p.example.answer for p in partials}
        pools: dict[str, list[str | None]] = {}
        for p in partials:
            pools.setdefault(p.example.id, list(p.pool))
        for p, ans in zip(partials, answers):
            pools[p.example.id].extend(ans)
        return {k: majority(v, self.task.equivalent)[0] for k, v in pools.items()}


def make_value(name: str, backend, task, steps: StepFormat, *, lam: float = 0.5, rollouts: int = 4,
               temperature: float = 0.8, max_tokens: int = 256, allow_gold: bool = False, prm: str = "",
               prm_aggregate: str = "last"):
    """The step value ``name`` (one of ``VALUES``). ``rollout-gold`` reads gold answers and needs
    ``allow_gold`` (training code only; an inference strategy never passes it)."""
    if name not in VALUES:
        raise ValueError(f"value must be one of {', '.join(VALUES)}, got {name!r}")
    if name == "likelihood":
        return Likelihood()
    if name == "self-eval":
        return SelfEval(backend, task, steps)
    if name == "xie":
        return XieCombined(backend, task, steps, lam=lam)
    if name == "prm":
        from .prm import PRMValue

        return PRMValue(task, steps, prm, prm_aggregate)
    if name == "rollout-gold" and not allow_gold:
        raise ValueError("value 'rollout-gold' reads gold answers: it builds training labels and is "
                         "refused at inference; use value=rollout (majority of the rollouts, no gold)")
    return Rollout(backend, task, m=rollouts, temperature=temperature, max_tokens=max_tokens,
                   gold=name == "rollout-gold")
