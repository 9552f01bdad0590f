"""ProgCo: the model verifies its own answer with a program it writes, and refines on the failures.

"ProgCo: Program Helps Self-Correction of Large Language Models" (Song et al. 2025, arXiv:2501.01264). Each
round: the model writes a checking program for its current answer (``program-verify``: the sandbox runs it);
all checks hold → stop; a check fails → the model sees its answer, the checking program and the failure, and
either revises the answer or, when it judges the check itself wrong, may repeat its answer (the paper's dual
refinement of response and verification program: the next round writes a fresh checking program for the new
answer). A checker that does not run (syntax error, no program) stops the loop with the verdict undecided: an
answer is never revised on a broken check. No gold is read.

Not covered: ProgCo's pseudo-programs executed by the model itself (here a real interpreter runs real Python),
its few-shot prompts, and the paper's use of the verification result for answer selection across samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..records import Example, SamplingParams, Step, Trace
from .base import generate_step, make_trace


def refine_prompt(task, example: Example, answer_text: str, checker: str | None, feedback: str) -> str:
    shown = f"```python\n{checker}\n```" if checker else "(none)"
    return (f"{task.prompt(example).rstrip()}\n\nYour previous answer:\n{answer_text.strip()}\n\n"
            f"A program written to check it:\n{shown}\n\nResult of running the check:\n{feedback.strip()}\n\n"
            "Either the answer or the check is wrong. Think about which, then give your final answer in the "
            "same form as before (if the check was wrong, repeat your answer).\n")


@dataclass(frozen=True)
class ProgCo:
    """Program-driven verification and refinement: verify with a written program, refine on a failed check."""

    rounds: int = 2
    """Verify-and-refine rounds at most."""
    max_tokens: int = 512
    """Upper bound on tokens per answer or checking program."""
    name = "progco"
    requires_code = True

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        from ..verifiers.execution import ProgramVerify
        from .self_debug import require_code

        require_code(self.name, task)

        verifier = ProgramVerify(backend, task, max_tokens=self.max_tokens)
        params = SamplingParams(n=1, temperature=0.0, max_tokens=self.max_tokens)
        first = generate_step(backend, task, [task.prompt(e) for e in examples], params)
        steps: list[list[Step]] = [[s] for s in first]
        text = [s.completions[0].text for s in first]
        answer = [s.answers[0] for s in first]
        log: list[list[dict]] = [[] for _ in examples]
        active = [i for i, a in enumerate(answer) if a is not None]
        for r in range(self.rounds):
            if not active:
                break
            verdicts, vsteps, feedback = verifier.check([examples[i] for i in active],
                                                        [answer[i] for i in active],
                                                        [text[i] for i in active])
            failing = []
            for k, i in enumerate(active):
                steps[i].extend(vsteps[k])
                log[i].append({"round": r, "check": verdicts[k].correct, "reason": verdicts[k].reason})
                if verdicts[k].correct is False:
                    failing.append((i, vsteps[k][0].info.get("program") if vsteps[k] else None, feedback[k]))
            if not failing:
                break
            prompts = [refine_prompt(task, examples[i], text[i], prog, fb) for i, prog, fb in failing]
            for (i, _, _), s in zip(failing, generate_step(backend, task, prompts, params, kind="refine")):
                steps[i].append(Step(kind=s.kind, prompt=s.prompt, completions=s.completions,
                                     answers=s.answers,
                                     info={"round": r}))
                text[i], answer[i] = s.completions[0].text, s.answers[0]
            active = [i for i, _, _ in failing if answer[i] is not None]
        return [make_trace(e, self.name, st, initial_answer=s0.answers[0], final_answer=a,
                           feedback="self-written checking program", rounds=lg,
                           revisions=sum(1 for s in st if s.kind == "refine"),
                           last_check=lg[-1]["check"] if lg else None)
                for e, st, s0, a, lg in zip(examples, steps, first, answer, log)]
