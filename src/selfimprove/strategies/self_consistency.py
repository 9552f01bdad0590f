"""Self-consistency (Wang et al. 2023, "Self-Consistency Improves Chain of Thought Reasoning"): sample n
reasoning paths and return the most common final answer.

Unparseable answers do not vote. Ties go to the answer that appeared first among the samples
(deterministic). Confidence = the winner's votes ÷ all n samples (unparseable samples count in the
denominator: a pool that is mostly unreadable is not confident). Answers are grouped through the task's
``equivalent``, the same layer that scores them. Weighted and adaptive variants are separate strategies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..answers import majority
from ..records import Example, Step, Trace
from .base import generate_step, make_trace
from .sample import Sample


@dataclass(frozen=True)
class SelfConsistency(Sample):
    """Majority vote over ``n`` sampled answers."""

    n: int = 16
    """Samples per example."""
    name = "self-consistency"

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        steps = generate_step(backend, task, [task.prompt(e) for e in examples], self.params())
        traces = []
        for e, s in zip(examples, steps):
            winner, votes, parsed = majority(s.answers, task.equivalent)
            vote = Step(kind="vote", info={"winner": winner, "votes": votes, "parsed": parsed, "n": self.n})
            traces.append(make_trace(e, self.name, [s, vote], initial_answer=s.answers[0],
                                     final_answer=winner,
                                     confidence=votes / self.n, samples=len(s.completions)))
        return traces
