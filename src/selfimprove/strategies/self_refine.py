"""Self-Refine (Madaan et al. 2023, "Self-Refine: Iterative Refinement with Self-Feedback", arXiv:2303.17651):
the same model answers, gives feedback on its answer, and refines it with that feedback, until the feedback
says there is nothing to fix or ``max_rounds`` refinements have been made.

Run under the fair protocol of arXiv:2406.15673 / arXiv:2310.01798: temperature 0 throughout, and a feedback
prompt that does not presuppose a mistake ("list any mistakes; if there are none, write 'No issues.'"). A task
with its own formats is used as is (``prompts.formats``): the built-in arithmetic model has no prose feedback
format, so its trained verdict is the feedback ("yes" = no issues) and its trained correct format is the
refinement.

Each round is two batched calls over the examples still refining: feedback, then refine. ``initial_answer`` is
the first answer, ``final_answer`` the last refinement's (None if that is unparseable: the refinement is what
the method returns). ``info['rounds']`` = refinements made, ``info['stopped']`` = 'no-issues', 'round-limit'
or 'error' (a failed feedback request), ``info['samples']`` = solve-format completions generated.

Not covered: few-shot feedback/refine demonstrations, keeping the whole history in the refine prompt (each
round sees only the latest answer and its feedback), task-specific multi-aspect feedback.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ..backends.base import greedy
from ..prompts import formats
from ..records import Example, SamplingParams, Step, Trace
from .base import generate_step, make_trace


@dataclass(frozen=True)
class SelfRefine:
    """Generate → feedback → refine, at temperature 0, until 'no issues' or the round limit."""

    max_rounds: int = 2
    """Most refinements per example."""
    max_tokens: int = 256
    """Upper bound on tokens per answer or refinement."""
    feedback_tokens: int = 0
    """Upper bound on tokens per feedback; 0 = the format's default (8 for a verdict, 8 + 256 when the verdict
    follows a rationale, 256 for prose)."""
    name = "self-refine"

    def __post_init__(self) -> None:
        if self.max_rounds < 0:
            raise ValueError(f"max_rounds must be >= 0, got {self.max_rounds}")
        if self.feedback_tokens < 0:
            raise ValueError(f"feedback_tokens must be >= 0 (0 = default), got {self.feedback_tokens}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        fmt = formats(task)
        params = SamplingParams(n=1, temperature=0.0, max_tokens=self.max_tokens)
        first = generate_step(backend, task, [task.prompt(e) for e in examples], params)
        steps: list[list[Step]] = [[s] for s in first]
        text = [s.completions[0].text for s in first]
        answer = [s.answers[0] for s in first]
        stopped: list[str | None] = [None if s.completions[0].ok else "error" for s in first]
        rounds = [0] * len(examples)
        for r in range(self.max_rounds):
            active = [i for i in range(len(examples)) if stopped[i] is None]
            if not active:
                break
            prompts = [fmt.feedback(examples[i], text[i]) for i in active]
            replies = greedy(backend, prompts, self.feedback_tokens or fmt.feedback_tokens, fmt.feedback_stop)
            refine = []
            for i, prompt, c in zip(active, prompts, replies):
                done = c.ok and fmt.no_issues(c.text)
                steps[i].append(Step(kind="feedback", prompt=prompt, completions=(c,),
                                     info={"round": r, "no_issues": done}))
                if not c.ok or done:
                    stopped[i] = "no-issues" if done else "error"
                else:
                    refine.append((i, c.text))
            if not refine:
                break
            prompts = [fmt.refine(examples[i], text[i], fb) for i, fb in refine]
            for (i, _), s in zip(refine, generate_step(backend, task, prompts, params, kind="refine")):
                steps[i].append(dataclasses.replace(s, info={"round": r}))
                text[i], answer[i] = s.completions[0].text, s.answers[0]
                rounds[i] += 1
        return [make_trace(e, self.name, st, initial_answer=s0.answers[0], final_answer=a,
                           rounds=n, stopped=why or "round-limit", samples=1 + n)
                for e, st, s0, a, n, why in zip(examples, steps, first, answer, rounds, stopped)]
