"""Verifiers that execute code in the sandbox: gold tests (an oracle), model-written tests, checking programs.

- ``execution`` (ORACLE): runs the example's gold tests. Reading gold tests is an oracle signal: the class has
  ``uses_gold = True``, its name and every verdict's reason say "oracle", and strategies and label-free
  methods refuse it. It is the default verifier of the code tasks (scoring runs).
- ``self-tests``: "CodeT: Code Generation with Generated Tests" (Chen et al. 2022, arXiv:2207.10397). The
  model writes assert statements for the problem; every candidate program runs against every generated test in
  the sandbox; candidates that pass exactly the same tests form a consensus set, scored |set| × |tests it
  passes| (dual execution agreement). No gold is read. ``correct`` is "passes every generated test" (None when
  the model wrote no parseable test).
- ``program-verify``: the verification step of "ProgCo: Program Helps Self-Correction of Large Language
  Models" (Song et al. 2025, arXiv:2501.01264). The model writes a checking program for its own answer; the
  sandbox runs it. All asserts hold → True; an AssertionError → False; any other failure, or a program with no
  ``assert`` statement (nothing was checked), → None (undecided), with the output kept as feedback for
  refinement.

Not covered: CodeT's sampling of tests with the function stub prompt of the paper (we ask in words), ProgCo's
pseudo-programs executed by the model itself (here a real interpreter runs real Python), test-suite
minimisation.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from ..records import Example, SamplingParams, Step, Verdict
from ..sandbox import Job
from ..tasks.code import extract_code
from .base import Assessment, assess_extracted

_ASSERT = re.compile(r"^(assert\s.+)$", re.MULTILINE)
_NUMERIC = re.compile(r"^-?\d+(?:\.\d+)?$")


class ExecutionVerifier:
    """ORACLE: pass/fail of the example's gold tests, run in the sandbox."""

    name = "execution"
    uses_gold = True

    def __init__(self, task, backend=None) -> None:
        self.task = task

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
        return assess_extracted(self, examples, texts)

    def verify(self, examples: Sequence[Example], answers: Sequence[Sequence[str | None]]
               ) -> list[list[Verdict]]:
        pairs = [(e, a) for e, row in zip(examples, answers, strict=True) for a in row if a is not None]
        results = iter(self.task.run_gold(pairs))
        out = []
        for row in answers:
            verdicts = []
            for a in row:
                if a is None:
                    verdicts.append(Verdict(None, None, "unparseable"))
                    continue
                r = next(results)
                if r.status == "error":
                    verdicts.append(Verdict(None, None, f"oracle tests: sandbox error ({r.error})"))
                else:
                    verdicts.append(Verdict(float(r.passed), r.passed,
                                            f"oracle tests: {r.status}, {r.n_passed}/{len(r.tests)} passed"
                                            + ("" if r.sandboxed else " (UNSANDBOXED)")))
            out.append(verdicts)
        return out


def entry_point(task, example: Example) -> str | None:
    """The function the tests should call, where the task names one."""
    return task.entry_point(example)


def tests_prompt(task, example: Example, k: int) -> str:
    name = entry_point(task, example)
    target = f"the function `{name}`" if name else "a correct solution"
    return (f"{task.prompt(example).rstrip()}\n\nDo not solve the problem. Write {k} assert statements "
            f"that test {target}, one per line, with the expected results worked out by hand, in a ```python "
            "code block.\n")


def parse_tests(text: str, limit: int, name: str | None = None) -> list[str]:
    """The distinct top-level ``assert`` lines of a completion (an indented assert belongs to some function
    the model wrote, not to a test), in order, at most ``limit``; with ``name``, only those that call it."""
    body = extract_code(text) or ""
    seen: dict[str, None] = {}
    for m in _ASSERT.finditer(body):
        line = m.group(1).strip()
        if name is None or re.search(rf"\b{re.escape(name)}\s*\(", line):
            seen.setdefault(line, None)
    return list(seen)[:limit]


class SelfTests:
    """CodeT dual agreement over model-written tests (no gold)."""

    name = "self-tests"
    uses_gold = False

    def __init__(self, backend, task, samples: int = 2, tests_per_sample: int = 5, temperature: float = 0.8,
                 max_tokens: int = 384) -> None:
        if samples < 1 or tests_per_sample < 1:
            raise ValueError("self-tests needs samples >= 1 and tests_per_sample >= 1")
        self.backend, self.task = backend, task
        self.samples, self.tests_per_sample = int(samples), int(tests_per_sample)
        self.temperature, self.max_tokens = float(temperature), int(max_tokens)

    def write_tests(self, examples: Sequence[Example]) -> tuple[list[list[str]], list[Step]]:
        """Model-written tests per example (deduplicated) and the steps that wrote them."""
        prompts = [tests_prompt(self.task, e, self.tests_per_sample) for e in examples]
        params = SamplingParams(n=self.samples, temperature=self.temperature if self.samples > 1 else 0.0,
                                max_tokens=self.max_tokens, seed=0)
        batches = self.backend.generate(prompts, params)
        tests, steps = [], []
        for e, prompt, comps in zip(examples, prompts, batches, strict=True):
            found: dict[str, None] = {}
            for c in comps:
                if c.ok:
                    for t in parse_tests(c.text, self.tests_per_sample, entry_point(self.task, e)):
                        found.setdefault(t, None)
            tests.append(list(found))
            steps.append(Step(kind="write-tests", prompt=prompt, completions=tuple(comps),
                              info={"tests": list(found)}))
        return tests, steps

    def pass_matrix(self, examples: Sequence[Example], programs: Sequence[Sequence[str | None]],
                    tests: Sequence[Sequence[str]]) -> list[list[tuple[bool, ...] | None]]:
        """For each candidate, which generated tests it passes (None: no program, or no tests)."""
        jobs, where = [], []
        for i, (e, row) in enumerate(zip(examples, programs, strict=True)):
            for j, a in enumerate(row):
                if a is not None and tests[i]:
                    jobs.append(self.task.tests_job(e, a, tests[i]))
                    where.append((i, j))
        out: list[list[tuple[bool, ...] | None]] = [[None] * len(row) for row in programs]
        for (i, j), r in zip(where, self.task.run(jobs)):
            out[i][j] = None if r.status == "error" else tuple(t.passed for t in r.tests)
        return out

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
        programs = [[self.task.extract(t) for t in row] for row in texts]
        tests, steps = self.write_tests(examples)
        return Assessment(self._verdicts(examples, programs, tests), [[s] for s in steps])

    def verify(self, examples: Sequence[Example], answers: Sequence[Sequence[str | None]]
               ) -> list[list[Verdict]]:
        tests, _ = self.write_tests(examples)
        return self._verdicts(examples, answers, tests)

    def _verdicts(self, examples, programs, tests) -> list[list[Verdict]]:
        matrix = self.pass_matrix(examples, programs, tests)
        return [dual_agreement(row, len(t)) for row, t in zip(matrix, tests, strict=True)]


def dual_agreement(passes: Sequence[tuple[bool, ...] | None], n_tests: int) -> list[Verdict]:
    """CodeT's score per candidate: |consensus set| × |tests the set passes|, divided by (candidates ×
    tests)."""
    if n_tests == 0:
        return [Verdict(None, None, "self-tests: the model wrote no parseable test") for _ in passes]
    sets: dict[tuple[bool, ...], int] = {}
    for p in passes:
        if p is not None:
            sets[p] = sets.get(p, 0) + 1
    n = max(len(passes), 1)
    out = []
    for p in passes:
        if p is None:
            out.append(Verdict(None, None, "self-tests: no program or sandbox error"))
            continue
        score = sets[p] * sum(p) / (n * n_tests)
        out.append(
            Verdict(score, all(p), f"self-tests: consensus set of {sets[p]}, passes {sum(p)}/{n_tests}"))
    return out


def checker_prompt(task, example: Example, answer_text: str) -> str:
    return (f"{task.prompt(example).rstrip()}\n\nProposed answer:\n{answer_text.strip()}\n\n"
            "Write a Python program that checks whether the proposed answer is correct. The variable "
            "`answer` holds the proposed answer (and any function it defines is already defined). End "
            "with assert statements that hold only if it is correct. Use a ```python code block.\n")


class ProgramVerify:
    """ProgCo's program-driven verification: the model writes a checking program; the sandbox runs it."""

    name = "program-verify"
    uses_gold = False

    def __init__(self, backend, task, max_tokens: int = 384) -> None:
        self.backend, self.task, self.max_tokens = backend, task, int(max_tokens)

    def prefix(self, example: Example, answer: str) -> str:
        """What the checking program starts from: the candidate program (code tasks) or ``answer = ...``."""
        if self.task.code == "program":
            return self.task.program(example, answer) + "\n"
        return f"answer = {answer}\n" if _NUMERIC.match(answer.strip()) else f"answer = {answer!r}\n"

    def check(self, examples: Sequence[Example], answers: Sequence[str | None], texts: Sequence[str]
              ) -> tuple[list[Verdict], list[list[Step]], list[str]]:
        """One checking program per (example, answer): verdicts, the steps that wrote them (per answer) and
        the feedback text for a refinement prompt. An unparseable answer is not checked (``correct=None``)."""
        todo = [i for i, a in enumerate(answers) if a is not None]
        prompts = [checker_prompt(self.task, examples[i], texts[i]) for i in todo]
        params = SamplingParams(n=1, temperature=0.0, max_tokens=self.max_tokens)
        comps = self.backend.generate(prompts, params) if prompts else []
        verdicts = [Verdict(None, None, "unparseable")] * len(answers)
        feedback = ["The answer could not be read."] * len(answers)
        steps: list[list[Step]] = [[] for _ in answers]
        jobs = []
        for i, p, row in zip(todo, prompts, comps, strict=True):
            program = extract_code(row[0].text) if row[0].ok else None
            jobs.append(Job(self.prefix(examples[i], answers[i]) + (program or "raise SystemExit(3)\n")))
            steps[i] = [
                Step(kind="verify-program", prompt=p, completions=tuple(row), info={"program": program})]
        for i, r in zip(todo, self.task.run(jobs)):
            verdicts[i], feedback[i] = _checker_verdict(r, steps[i][0].info["program"])
            steps[i] = [Step(kind=s.kind, prompt=s.prompt, completions=s.completions, verdicts=(verdicts[i],),
                             info={**s.info, "status": r.status, "stderr": r.stderr[-600:]})
                        for s in steps[i]]
        return verdicts, steps, feedback

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]) -> Assessment:
        flat = [(i, t) for i, row in enumerate(texts) for t in row]
        answers = [self.task.extract(t) for _, t in flat]
        verdicts, _, _ = self.check([examples[i] for i, _ in flat], answers, [t for _, t in flat])
        out: list[list[Verdict]] = [[] for _ in examples]
        for (i, _), v in zip(flat, verdicts):
            out[i].append(v)
        return Assessment(out, [[] for _ in examples])

    def verify(self, examples: Sequence[Example], answers: Sequence[Sequence[str | None]]
               ) -> list[list[Verdict]]:
        texts = [[a or "" for a in row] for row in answers]
        return self.assess(examples, texts).verdicts


def has_assert(program: str) -> bool:
    """Whether a program contains an ``assert`` statement anywhere (a program that does not parse counts as
    having one: the sandbox's SyntaxError then makes the verdict undecided)."""
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return True
    return any(isinstance(node, ast.Assert) for node in ast.walk(tree))


def _checker_verdict(r, program: str | None) -> tuple[Verdict, str]:
    if program is None:
        return Verdict(None, None, "program-verify: no checking program"), "The checking program was missing."
    if r.status == "passed" and not has_assert(program):
        return (Verdict(None, None, "program-verify: the checking program has no assert (nothing checked)"),
                "The checking program checked nothing: it has no assert statement.")
    if r.status == "passed":
        return Verdict(1.0, True, "program-verify: all checks hold"), "All checks hold."
    tail = (r.stderr.strip().splitlines() or [r.status])[-1]
    if "AssertionError" in r.stderr:
        return Verdict(0.0, False, f"program-verify: {tail}"), f"A check failed: {r.stderr.strip()[-600:]}"
    return (Verdict(None, None, f"program-verify: the checker did not run ({tail})"),
            f"The checking program did not run: {tail}")
