"""Self-consistency with soft votes: likelihood-weighted SC, Soft Self-Consistency and Universal SC.

- ``weighted-sc``: the weighted majority of Wang et al. 2023 ("Self-Consistency Improves Chain of Thought
  Reasoning", arXiv:2203.11171, their "weighted sum" rows): each sample votes for its answer with weight
  exp(mean token log-probability) (``weight=mean``, length-normalised) or its sequence probability
  (``weight=sequence``, normalised by the pool's largest so long samples do not underflow to 0).
  Confidence = the winner's weight ÷ the weight of all samples, unparseable ones included.
- ``soft-sc``: Soft Self-Consistency (Wang et al. 2024, arXiv:2402.13212): every sample is scored by its token
  probabilities (``aggregate`` = mean, min or product of p(token)); the answer with the best-scoring sample
  wins. Confidence = that score.
- ``usc``: Universal Self-Consistency (Chen et al. 2023, "Universal Self-Consistency for Large Language Model
  Generation", arXiv:2311.17311): the model is shown its own responses and asked which is the most
  consistent; the answer of the response it names wins. ``select=loglikelihood`` reads the choice as the most
  probable response number (each number scored in its forms, ``verifiers.choice``; at most 9 responses, so no
  number is a prefix of another), ``select=generate`` parses the number from a greedy reply, ``auto`` (the
  default) scores where the backend can. A small model's written reply often names no response or always the
  last one; a response that was truncated or unparseable is never picked. When no response can be chosen, the
  plain majority answer is used, ``info['usc_parsed']`` is False and the selection counts as unscored.
  Confidence = the chosen answer's vote share among the samples.

Answers are grouped through ``task.equivalent``, the layer that scores them. ``info['samples']`` holds the
samples drawn. Not covered: Soft-SC's action-level aggregation for agents, Fine-grained SC (arXiv:2407.02056),
response synthesis (arXiv:2503.04104).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..answers import group_answers, majority
from ..backends.base import greedy, require
from ..prompts import usc_prompt
from ..records import Completion, Example, Step, Trace
from ..verifiers.choice import choice_step, choose
from .base import generate_step, make_trace
from .sample import Sample

WEIGHTS = ("mean", "sequence")
AGGREGATES = ("mean", "min", "product")


def weighted_vote(answers: Sequence[str | None], weights: Sequence[float], equivalent
                  ) -> tuple[str | None, float, list[list]]:
    """(winner, its weight, [[answer, total weight], ...]) over non-None answers; ties go to the first
    seen."""
    if len(answers) != len(weights):
        raise ValueError(f"weighted_vote needs one weight per answer, got {len(answers)} and {len(weights)}")
    groups = [[answers[g[0]], sum(weights[i] for i in g)] for g in group_answers(answers, equivalent)]
    if not groups:
        return None, 0.0, []
    best = max(groups, key=lambda g: g[1])
    return best[0], best[1], groups


@dataclass(frozen=True)
class WeightedSC(Sample):
    """Majority vote with each sample weighted by its likelihood."""

    n: int = 16
    """Samples per example."""
    weight: str = "mean"
    """'mean': exp(mean token log-prob); 'sequence': sequence probability (relative to the pool's best)."""
    name = "weighted-sc"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weight not in WEIGHTS:
            raise ValueError(f"weight must be one of {', '.join(WEIGHTS)}, got {self.weight!r}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        require(backend, "logprobs")
        steps = generate_step(backend, task, [task.prompt(e) for e in examples], self.params())
        traces = []
        for e, s in zip(examples, steps):
            weights = sample_weights(s.completions, self.weight)
            winner, w, groups = weighted_vote(s.answers, weights, task.equivalent)
            total = sum(weights)
            vote = Step(kind="vote", info={"winner": winner, "weight": w, "total": total, "groups": groups,
                                           "by": self.weight})
            traces.append(make_trace(e, self.name, [s, vote], initial_answer=s.answers[0],
                                     final_answer=winner,
                                     confidence=w / total if total > 0 else 0.0, samples=len(s.completions)))
        return traces


def sample_weights(comps: Sequence[Completion], weight: str) -> list[float]:
    """Vote weights; a failed or empty sample (no log-probabilities) weighs 0."""
    if weight == "mean":
        return [math.exp(c.mean_logprob) if c.ok and c.mean_logprob is not None else 0.0 for c in comps]
    sums = [c.sum_logprob if c.ok and c.token_logprobs else None for c in comps]
    top = max((x for x in sums if x is not None), default=0.0)
    return [0.0 if x is None else math.exp(x - top) for x in sums]


@dataclass(frozen=True)
class SoftSC(Sample):
    """Soft Self-Consistency: the answer of the sample with the highest aggregated token probability."""

    n: int = 8
    """Samples per example (Soft-SC matches SC with about half the samples)."""
    aggregate: str = "mean"
    """How token probabilities make a sample's score: 'mean', 'min' or 'product'."""
    name = "soft-sc"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        require(backend, "logprobs")
        steps = generate_step(backend, task, [task.prompt(e) for e in examples], self.params())
        traces = []
        for e, s in zip(examples, steps):
            scores = [soft_score(c, self.aggregate) if a is not None else None
                      for c, a in zip(s.completions, s.answers)]
            ranked = [j for j in range(len(scores)) if scores[j] is not None]
            best = max(ranked, key=lambda j: scores[j], default=None)  # max keeps the first of equal scores
            winner = None if best is None else s.answers[best]
            vote = Step(kind="vote", info={"winner": winner, "scores": scores, "selected": best,
                                           "aggregate": self.aggregate})
            traces.append(make_trace(e, self.name, [s, vote], initial_answer=s.answers[0],
                                     final_answer=winner,
                                     confidence=None if best is None else scores[best],
                                     samples=len(s.completions)))
        return traces


def soft_score(c: Completion, aggregate: str) -> float | None:
    """A sample's Soft-SC score from its token probabilities; None without log-probabilities."""
    if not c.ok or not c.token_logprobs:
        return None
    probs = [math.exp(lp) for lp in c.token_logprobs]
    if aggregate == "mean":
        return sum(probs) / len(probs)
    if aggregate == "min":
        return min(probs)
    return math.exp(sum(c.token_logprobs))


_PICK = re.compile(r"\d+")


@dataclass(frozen=True)
class UniversalSC(Sample):
    """Universal Self-Consistency: the model picks the most consistent of its own responses."""

    n: int = 8
    """Samples per example, all shown to the model in one selection prompt."""
    select_tokens: int = 8
    """Token budget of the selection reply ('Response 3') when it is generated."""
    select: str = "auto"
    """How the choice is read: 'loglikelihood' (the most probable response number), 'generate' (parsed from a
    greedy reply) or 'auto' (log-likelihood where the backend offers it and n <= 9)."""
    name = "usc"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.select not in ("auto", "loglikelihood", "generate"):
            raise ValueError(f"select must be auto, loglikelihood or generate, got {self.select!r}")
        if self.select == "loglikelihood" and self.n > 9:
            raise ValueError(f"select=loglikelihood reads one digit, so n must be <= 9, got {self.n}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        pools = generate_step(backend, task, [task.prompt(e) for e in examples], self.params())
        prompts = [usc_prompt(task.prompt(e), [c.text for c in s.completions])
                   for e, s in zip(examples, pools)]
        by_ll = self.select == "loglikelihood" or (self.select == "auto" and self.n <= 9
                                                    and backend.capabilities.loglikelihood)
        picks = self._by_probability(backend, prompts, pools) if by_ll else self._by_reply(backend, prompts)
        traces = []
        for e, s, (idx, select) in zip(examples, pools, picks):
            parsed = idx is not None and 0 <= idx < len(s.answers) and s.answers[idx] is not None
            winner = s.answers[idx] if parsed else majority(s.answers, task.equivalent)[0]
            votes = sum(task.equivalent(a, winner) for a in s.answers)
            select = dataclasses.replace(select, info={**select.info, "selected": idx if parsed else None,
                                                       "winner": winner, "parsed": parsed})
            traces.append(make_trace(e, self.name, [s, select], initial_answer=s.answers[0],
                                     final_answer=winner, confidence=votes / self.n,
                                     samples=len(s.completions), usc_parsed=parsed, verdicts=1,
                                     unscored=int(not parsed), all_unscored=not parsed))
        return traces

    def _by_reply(self, backend, prompts: list[str]) -> list[tuple[int | None, Step]]:
        out = []
        for prompt, c in zip(prompts, greedy(backend, prompts, self.select_tokens, ("\n",))):
            m = _PICK.search(c.text) if c.ok else None
            out.append(
                (int(m.group()) - 1 if m else None, Step(kind="select", prompt=prompt, completions=(c,))))
        return out

    def _by_probability(self, backend, prompts: list[str],
                        pools: list[Step]) -> list[tuple[int | None, Step]]:
        """The most probable response number among those with an answer (a truncated or unparseable response
        cannot win); one batched scoring call."""
        numbers = [str(k) for k in range(1, self.n + 1)]
        choices, comps = choose(backend, prompts, [(k, (k, " " + k)) for k in numbers])
        out = []
        for prompt, ch, cs, pool in zip(prompts, choices, comps, pools):
            ok = [j for j, a in enumerate(pool.answers) if a is not None]
            idx = None if ch.probs is None or not ok else max(ok, key=lambda j: ch.probs[numbers[j]])
            out.append((idx, choice_step("select", prompt, ch, cs, why=ch.why)))
        return out
