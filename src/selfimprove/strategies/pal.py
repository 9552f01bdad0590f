"""Program-aided answers, and self-consistency / best-of-n by execution result.

- ``pal``: "PAL: Program-aided Language Models" (Gao et al. 2022, arXiv:2211.10435). The model writes a
  program; the sandbox runs it and its printed value is the answer (the task's ``extract`` executes, e.g.
  ``pal-arithmetic``). With ``n > 1`` the answers are voted by value: self-consistency by execution result
  ("Self-Consistency Improves Chain of Thought Reasoning in Language Models", Wang et al. 2022,
  arXiv:2203.11171, over programs). A program that fails or prints no number does not vote.
- ``codet``: best-of-n over programs ranked by CodeT's dual execution agreement with model-written tests
  ("CodeT: Code Generation with Generated Tests", Chen et al. 2022, arXiv:2207.10397; the ``self-tests``
  verifier). Equivalent to ``best-of-n:verifier=self-tests``; no gold is read.

Not covered: PAL's few-shot prompts and its variable-naming study; CodeT's test sampling with the paper's
function-stub prompt (``self-tests`` asks in words).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..answers import majority
from ..records import Example, SamplingParams, Trace
from .base import generate_step, make_trace
from .best_of_n import BestOfN
from .self_debug import require_code


@dataclass(frozen=True)
class PAL:
    """The model writes a program; its printed value is the answer; n > 1 votes by value."""

    n: int = 1
    """Programs per example; more than one votes by executed value."""
    temperature: float = 0.0
    """Sampling temperature (0: greedy; use > 0 with n > 1)."""
    max_tokens: int = 256
    """Upper bound on tokens per program."""
    name = "pal"
    requires_code = True

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.n > 1 and self.temperature == 0:
            raise ValueError("n > 1 with temperature 0 repeats one program; set temperature > 0")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        require_code(self.name, task, "program-aided")
        params = SamplingParams(n=self.n, temperature=self.temperature, max_tokens=self.max_tokens, seed=0)
        pools = generate_step(backend, task, [task.prompt(e) for e in examples], params)
        traces = []
        for e, s in zip(examples, pools):
            winner, votes, voters = majority(s.answers, task.equivalent)
            traces.append(make_trace(e, self.name, [s], initial_answer=s.answers[0], final_answer=winner,
                                     confidence=(votes / voters) if voters else None, samples=len(s.answers),
                                     failed_programs=len(s.answers) - voters))
        return traces


@dataclass(frozen=True)
class CodeT(BestOfN):
    """Best-of-n over programs by CodeT dual agreement with model-written tests (no gold)."""

    n: int = 8
    """Programs per example."""
    temperature: float = 0.8
    """Sampling temperature of the programs."""
    verifier: str = "self-tests"
    """The self-verifier; CodeT's is self-tests (options: self-tests:samples=2,tests_per_sample=5)."""
    name = "codet"
    requires_code = True

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        require_code(self.name, task, "program")
        return super().run(backend, task, examples)
