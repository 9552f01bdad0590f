"""Greedy decoding and plain sampling: the baselines every other strategy is compared with.

``greedy``: one completion at temperature 0. ``sample``: ``n`` completions at ``temperature``; the trace's
final answer is the first sample's (pass@k and maj@k are computed from the whole pool by
``metrics.accuracy``), so one pool of n samples serves every k ≤ n.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..records import Example, SamplingParams, Trace
from .base import generate_step, make_trace


@dataclass(frozen=True)
class Greedy:
    """Greedy decoding, one completion per example."""

    max_tokens: int = 256
    """Upper bound on generated tokens."""
    name = "greedy"

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        params = SamplingParams(n=1, temperature=0.0, max_tokens=self.max_tokens)
        steps = generate_step(backend, task, [task.prompt(e) for e in examples], params)
        return [make_trace(e, self.name, [s], initial_answer=s.answers[0], final_answer=s.answers[0])
                for e, s in zip(examples, steps)]


@dataclass(frozen=True)
class Sample:
    """``n`` samples per example; final answer = the first sample's."""

    n: int = 8
    """Samples per example."""
    temperature: float = 0.8
    """Sampling temperature."""
    top_p: float = 1.0
    """Nucleus mass."""
    max_tokens: int = 256
    """Upper bound on generated tokens per sample."""
    seed: int = 0
    """Sampling seed."""
    name = "sample"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")

    def params(self) -> SamplingParams:
        return SamplingParams(n=self.n, temperature=self.temperature, top_p=self.top_p,
                              max_tokens=self.max_tokens, seed=self.seed)

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        steps = generate_step(backend, task, [task.prompt(e) for e in examples], self.params())
        return [make_trace(e, self.name, [s], initial_answer=s.answers[0], final_answer=s.answers[0],
                           samples=len(s.completions)) for e, s in zip(examples, steps)]
