"""Self-debugging: run the program, feed the failing tests or errors back, let the model fix it, up to R
rounds.

"Teaching Large Language Models to Self-Debug" (Chen et al. 2023, arXiv:2304.05128), the "unit test feedback"
and "simple feedback" variants. Where the feedback comes from is a setting, and it decides what the result
means (the fair-protocol distinction of the self-correction literature, e.g. Huang et al. 2024, "Large
Language Models Cannot Self-Correct Reasoning Yet", arXiv:2310.01798):

- ``feedback=self`` (default): the model first writes tests for the problem (as CodeT does); the program runs
  against them in the sandbox and their failures are the feedback. No gold is read.
- ``feedback=run``: only the program's own execution (exceptions, timeouts, and for program-aided tasks what
  it printed); no tests, no gold.
- ``feedback=oracle`` (ORACLE): the example's gold tests (code tasks) or gold answer (program-aided tasks) say
  whether to continue and what failed. The strategy then has ``uses_gold = True``, its row is labelled
  "oracle" (``describe`` shows ``feedback=oracle``; every trace has ``info['oracle'] = True``): an upper
  bound, never a self-improvement result.

Each round revises only the examples whose check failed, with temperature 0; a passing check stops. The trace
records each round's program, check outcome and feedback (``info['rounds']``); ``initial_answer`` is the first
program's answer and ``final_answer`` the last, so the correction transitions (c→w, w→c) are measured by the
usual metrics, per feedback source as separate rows.

Not covered: the paper's "explanation" feedback (the model explains its code line by line), few-shot debug
prompts, and trace (execution trace) feedback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UserError
from ..records import Example, SamplingParams, Step, Trace
from ..sandbox import Job
from ..tasks.code import extract_code
from .base import generate_step, make_trace

FEEDBACK = ("self", "run", "oracle")
LABELS = {"self": "self-written tests", "run": "execution errors only", "oracle": "oracle tests"}
"""How each feedback source is named in reports."""


def program_of(task, example: Example, answer: str | None, text: str) -> str | None:
    """The program behind an answer: the completion's code for a program-aided task (whose answers are printed
    values), else the task's full program for the answer."""
    if task.code == "program-aided":
        return extract_code(text)
    return None if answer is None else task.program(example, answer)


def require_code(strategy: str, task, kind: str | None = None) -> None:
    """Refuse a task that runs no code (or not the ``kind`` of code the strategy needs), with a message."""
    if not task.code or (kind and task.code != kind):
        need = {"program": "humaneval or mbpp", "program-aided": "pal-arithmetic or pal-word-problems"}.get(
            kind or "", "humaneval, mbpp, pal-arithmetic or pal-word-problems")
        raise UserError(
            f"strategy '{strategy}' runs programs: it needs a code task ({need}), not '{task.name}'")


def debug_prompt(task, example: Example, program: str | None, feedback: str) -> str:
    shown = f"```python\n{program}\n```" if program else "(no program could be read from the answer)"
    return (f"{task.prompt(example).rstrip()}\n\nHere is a program written for this task:\n{shown}\n\n"
            f"Feedback from running it:\n{feedback.strip()}\n\n"
            "Fix the program. Answer with the whole corrected program in a ```python code block.\n")


@dataclass(frozen=True)
class SelfDebug:
    """Generate, run, feed failures back, revise; up to ``rounds`` rounds (feedback: self | run | oracle)."""

    rounds: int = 3
    """Debugging rounds at most; a passing check ends them for that example."""
    feedback: str = "self"
    """self (model-written tests), run (execution errors only) or oracle (gold tests; labelled ORACLE)."""
    tests: int = 5
    """Tests the model writes per problem (feedback=self)."""
    max_tokens: int = 512
    """Upper bound on tokens per program or set of tests."""
    name = "self-debug"
    requires_code = True

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.feedback not in FEEDBACK:
            raise ValueError(f"feedback must be one of {', '.join(FEEDBACK)}, got {self.feedback!r}")
        if self.tests < 1:
            raise ValueError(f"tests must be >= 1, got {self.tests}")

    @property
    def uses_gold(self) -> bool:
        return self.feedback == "oracle"

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        require_code(self.name, task)
        params = SamplingParams(n=1, temperature=0.0, max_tokens=self.max_tokens)
        first = generate_step(backend, task, [task.prompt(e) for e in examples], params)
        steps: list[list[Step]] = [[s] for s in first]
        tests: list[list[str]] = [[] for _ in examples]
        if self.feedback == "self":
            from ..verifiers.execution import SelfTests

            if task.code == "program-aided":
                raise ValueError("self-debug:feedback=self needs a task with tests (humaneval, mbpp); for a "
                                 "program-aided task use feedback=run, or the progco strategy")

            writer = SelfTests(backend, task, samples=1, tests_per_sample=self.tests,
                               max_tokens=self.max_tokens)
            tests, written = writer.write_tests(examples)
            for row, s in zip(steps, written):
                row.append(s)
        text = [s.completions[0].text for s in first]
        answer = [s.answers[0] for s in first]
        log: list[list[dict]] = [[] for _ in examples]
        active = list(range(len(examples)))
        for r in range(self.rounds + 1):
            outcomes = self.check(task, [examples[i] for i in active], [answer[i] for i in active],
                                  [text[i] for i in active], [tests[i] for i in active])
            failing = []
            for i, (ok, fb) in zip(active, outcomes):
                log[i].append({"round": r, "passed": ok, "feedback": fb[:1500]})
                if not ok and r < self.rounds:
                    failing.append(i)
            if not failing:
                break
            prompts = [debug_prompt(task, examples[i], program_of(task, examples[i], answer[i], text[i]),
                                    log[i][-1]["feedback"]) for i in failing]
            for i, s in zip(failing, generate_step(backend, task, prompts, params, kind="debug")):
                steps[i].append(Step(kind=s.kind, prompt=s.prompt, completions=s.completions,
                                     answers=s.answers,
                                     info={"round": r + 1, "feedback_source": LABELS[self.feedback]}))
                text[i], answer[i] = s.completions[0].text, s.answers[0]
            active = failing
        return [make_trace(e, self.name, st, initial_answer=s0.answers[0], final_answer=a,
                           feedback=LABELS[self.feedback], oracle=self.uses_gold, rounds=lg,
                           revisions=len(lg) - 1, samples=len(lg))
                for e, st, s0, a, lg in zip(examples, steps, first, answer, log)]

    def check(self, task, examples, answers, texts, tests) -> list[tuple[bool, str]]:
        """(passed, feedback text) per example, from the configured feedback source."""
        if self.feedback == "oracle":
            return self._oracle(task, examples, answers, texts)
        programs = [program_of(task, e, a, t) for e, a, t in zip(examples, answers, texts)]
        jobs = [None if p is None else
                (task.tests_job(e, a, ts) if ts and a is not None and task.code != "program-aided"
                 else Job(p))
                for e, a, p, ts in zip(examples, answers, programs, tests)]
        results = iter(task.run([j for j in jobs if j is not None]))
        out = []
        for j, a, ts in zip(jobs, answers, tests):
            if j is None:
                out.append((False, "No program could be read from the answer."))
                continue
            r = next(results)
            ok = r.passed and (a is not None)
            note = r.feedback() if not r.passed else (
                "It ran without errors." if a is not None
                else "It ran but printed no number on its last line.")
            if task.code == "program-aided" and r.status == "passed":
                note = f"It printed:\n{r.stdout.strip()[-300:]}" + ("" if ok else "\nThat is not a number.")
            if self.feedback == "self" and not ts:  # said in the log, so the row's label is not overclaimed
                note = "(No usable test was written; the program was only run.)\n" + note
            out.append((ok, note))
        return out

    def _oracle(self, task, examples, answers, texts) -> list[tuple[bool, str]]:
        """ORACLE: gold tests (code tasks) or the gold answer (program-aided tasks)."""
        if task.code == "program-aided":
            verdicts = task.check_batch(list(zip(examples, answers)))
            return [(bool(v), "The printed answer is correct." if v else
                     ("The program printed no number." if a is None else f"The printed answer {a} is wrong."))
                    for a, v in zip(answers, verdicts)]
        pairs = [(e, a) for e, a in zip(examples, answers) if a is not None]
        results = iter(task.run_gold(pairs))
        out = []
        for a in answers:
            if a is None:
                out.append((False, "No program could be read from the answer."))
            else:
                r = next(results)
                out.append((r.passed, r.feedback()))
        return out
