"""Adaptive self-consistency: spend samples where the vote is still open.

- ``esc``: Early-stopping Self-Consistency (Li et al. 2024, "Escape Sky-high Cost", arXiv:2401.10480): sample
  in windows of ``window``; stop as soon as one window is unanimous (every answer parseable and equivalent),
  or at ``max_samples``.
- ``asc``: Adaptive-Consistency (Aggarwal et al. 2023, "Let's Sample Step by Step", arXiv:2305.11860): draw
  ``step`` samples at a time; stop when the posterior probability that the current leader is the true majority
  reaches ``threshold``. ``criterion=beta``: P(p₁ > p₂) with p₁ ~ Beta(v₁+1, v₂+1) for the top two vote
  counts, computed exactly (= P(Binomial(v₁+v₂+1, ½) ≤ v₁)). ``criterion=dirichlet``: P(p_leader is the
  largest) under Dirichlet(counts + 1) over the answers seen plus one pseudo-answer for those not seen yet, by
  numerical integration of independent Gamma variables.
- ``dsc``: Difficulty-Adaptive Self-Consistency (Wang et al. 2024, "Make Every Penny Count",
  arXiv:2408.13457): a fixed budget of ``budget`` samples per example *on average over the batch*. Every
  example is pre-sampled with one window; the posterior (Beta criterion) then ranks difficulty, and each
  further window goes to the open examples with the lowest posterior first, until the budget is spent, every
  example is settled (posterior ≥ ``threshold``) or at ``max_samples``. Easy examples stop after the
  pre-sample; their savings buy samples for hard ones. The batch is what the runner passes in one ``run`` call
  (one chunk).

Every round is one batched backend call over the examples still open; round r samples with seed
``seed + r`` so rounds draw different samples. Unparseable answers are counted as samples but do not vote. The
final answer is the majority over all samples drawn; confidence = its votes ÷ samples drawn;
``info['samples']`` holds the samples drawn for the example and ``info['stopped']`` why sampling stopped
('unanimous', 'posterior', 'max_samples' or 'budget').

Not covered: DSC's LLM-judged difficulty prior and its sample-size pre-allocation, ESC's control scheme for
choosing the window and maximum, Adaptive-Consistency's learned stopping criteria.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..answers import group_answers, majority
from ..records import Example, SamplingParams, Step, Trace
from .base import generate_step, make_trace

CRITERIA = ("beta", "dirichlet")


@dataclass(frozen=True)
class _Sampling:
    temperature: float = 0.8
    """Sampling temperature."""
    top_p: float = 1.0
    """Nucleus mass."""
    max_tokens: int = 256
    """Upper bound on generated tokens per sample."""
    seed: int = 0
    """Sampling seed of the first round; round r uses seed + r."""

    def _params(self, n: int, r: int) -> SamplingParams:
        return SamplingParams(n=n, temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
                              seed=self.seed + r)

    def _rounds(self, backend, task, examples: Sequence[Example], first: int, step: int, cap: int,
                settled: Callable[[list], str | None], budget: int | None = None) -> list[Trace]:
        """Sample ``first`` then ``step`` per round for every open example; ``settled(answers)`` names why an
        example may stop (or None); with a ``budget``, open examples with the lowest posterior go first."""
        steps: list[list[Step]] = [[] for _ in examples]
        answers: list[list] = [[] for _ in examples]
        stopped: list[str | None] = [None] * len(examples)
        spent, r = 0, 0
        while True:
            k = first if r == 0 else step
            batch = [i for i in range(len(examples)) if stopped[i] is None]
            if budget is not None:
                batch.sort(key=lambda i: (posterior_beta(answers[i], task.equivalent), i))
                batch = batch[:max(budget - spent, 0) // k]
                for i in range(len(examples)):
                    if stopped[i] is None and i not in batch:
                        stopped[i] = "budget"
            if not batch:
                break
            prompts = [task.prompt(examples[i]) for i in batch]
            for i, s in zip(batch, generate_step(backend, task, prompts, self._params(k, r))):
                steps[i].append(dataclasses.replace(s, info={"round": r}))
                answers[i].extend(s.answers)
                spent += len(s.answers)
                why = settled(answers[i])
                stopped[i] = why or ("max_samples" if len(answers[i]) + step > cap else None)
            r += 1
        traces = []
        for e, st, ans, why in zip(examples, steps, answers, stopped):
            winner, votes, parsed = majority(ans, task.equivalent)
            vote = Step(kind="vote", info={"winner": winner, "votes": votes, "parsed": parsed, "n": len(ans),
                                           "stopped": why})
            traces.append(make_trace(e, self.name, [*st, vote], initial_answer=ans[0] if ans else None,
                                     final_answer=winner, confidence=votes / len(ans) if ans else None,
                                     samples=len(ans), rounds=len(st), stopped=why))
        return traces


@dataclass(frozen=True)
class ESC(_Sampling):
    """Early-stopping SC: stop at the first unanimous window."""

    window: int = 4
    """Samples per window."""
    max_samples: int = 16
    """Most samples per example; a multiple of ``window``."""
    name = "esc"

    def __post_init__(self) -> None:
        if self.window < 1 or self.max_samples < self.window or self.max_samples % self.window:
            raise ValueError(f"need 1 <= window <= max_samples with max_samples a multiple of window, got "
                             f"window={self.window}, max_samples={self.max_samples}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        def unanimous(ans: list) -> str | None:
            w = ans[-self.window:]
            return "unanimous" if w[0] is not None and all(task.equivalent(w[0], a) for a in w) else None
        return self._rounds(backend, task, examples, self.window, self.window, self.max_samples, unanimous)


@dataclass(frozen=True)
class ASC(_Sampling):
    """Adaptive-Consistency: stop when the leader's posterior probability of being the majority is high."""

    threshold: float = 0.95
    """Stop once P(leader is the majority answer) reaches this."""
    criterion: str = "beta"
    """'beta' (top two answers, exact) or 'dirichlet' (all answers seen, numerical)."""
    step: int = 1
    """Samples drawn per round (one batched call per round)."""
    max_samples: int = 16
    """Most samples per example."""
    name = "asc"

    def __post_init__(self) -> None:
        if not 0.5 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0.5, 1), got {self.threshold}")
        if self.criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {', '.join(CRITERIA)}, got {self.criterion!r}")
        if self.step < 1 or self.max_samples < self.step:
            raise ValueError(
                f"need 1 <= step <= max_samples, got step={self.step}, max_samples={self.max_samples}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        post = posterior_beta if self.criterion == "beta" else posterior_dirichlet

        def confident(ans: list) -> str | None:
            return "posterior" if post(ans, task.equivalent) >= self.threshold else None
        return self._rounds(backend, task, examples, self.step, self.step, self.max_samples, confident)


@dataclass(frozen=True)
class DSC(_Sampling):
    """Difficulty-adaptive SC: a fixed batch budget, spent on the hardest open examples first."""

    budget: float = 8.0
    """Mean samples per example over the batch (the batch total is budget × examples)."""
    window: int = 4
    """Pre-samples per example, and samples per later allocation."""
    threshold: float = 0.95
    """An example is settled when P(leader is the majority) (Beta criterion) reaches this."""
    max_samples: int = 32
    """Most samples per example."""
    name = "dsc"

    def __post_init__(self) -> None:
        if self.window < 1 or self.budget < self.window:
            raise ValueError(f"budget ({self.budget}) must be at least window ({self.window}): every example "
                             "is pre-sampled once")
        if self.max_samples < self.window:
            raise ValueError(f"max_samples ({self.max_samples}) must be at least window ({self.window})")
        if not 0.5 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0.5, 1), got {self.threshold}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        def confident(ans: list) -> str | None:
            return "posterior" if posterior_beta(ans, task.equivalent) >= self.threshold else None
        return self._rounds(backend, task, examples, self.window, self.window, self.max_samples, confident,
                            budget=round(self.budget * len(examples)))


# ---- posteriors --------------------------------------------------------------------------------------------


def vote_counts(answers: Sequence[str | None], equivalent) -> list[int]:
    """Votes per distinct answer, largest first (None does not vote)."""
    return sorted((len(g) for g in group_answers(answers, equivalent)), reverse=True)


def posterior_beta(answers: Sequence[str | None], equivalent) -> float:
    """P(p₁ > p₂) for the top two answers under Beta(v₁+1, v₂+1) = P(Binomial(v₁+v₂+1, ½) ≤ v₁)."""
    counts = vote_counts(answers, equivalent) + [0, 0]
    v1, v2 = counts[0], counts[1]
    n = v1 + v2 + 1
    return sum(math.comb(n, k) for k in range(v1 + 1)) / 2 ** n


def posterior_dirichlet(answers: Sequence[str | None], equivalent, points: int = 400) -> float:
    """P(the leader's probability is the largest) under Dirichlet(counts + 1) over the answers seen and one
    pseudo-answer for unseen ones: ∫ f_Γ(α₁)(x) ∏_{j>1} F_Γ(α_j)(x) dx by Simpson's rule."""
    alphas = [c + 1 for c in vote_counts(answers, equivalent)] + [1]
    a1, rest = alphas[0], alphas[1:]
    upper = a1 + 12.0 * math.sqrt(a1) + 12.0
    h = upper / points
    total = 0.0
    for j in range(points + 1):
        x = j * h
        weight = 1 if j in (0, points) else (4 if j % 2 else 2)
        total += weight * _gamma_pdf(x, a1) * math.prod(_gamma_cdf(x, a) for a in rest)
    return min(1.0, total * h / 3.0)


def _gamma_pdf(x: float, a: int) -> float:
    if x <= 0.0:
        return 1.0 if a == 1 else 0.0
    return math.exp((a - 1) * math.log(x) - x - math.lgamma(a))


def _gamma_cdf(x: float, a: int) -> float:
    """Regularised lower incomplete gamma for integer a: 1 − e^{−x} Σ_{k<a} x^k / k!."""
    term, acc = 1.0, 1.0
    for k in range(1, a):
        term *= x / k
        acc += term
    return max(0.0, 1.0 - math.exp(-x) * acc)
