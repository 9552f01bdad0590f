"""Self-code-align: SFT on the model's own programs that agree with its own tests (no gold).

After "SelfCodeAlign: Self-Alignment for Code Generation" (Wei et al. 2024, arXiv:2410.24198): the model
writes programs *and* tests, and only programs that pass the tests in the sandbox are kept for SFT. Here the
problems are the task's training problems (their gold tests are never read); ``n`` programs are sampled per
problem, the model writes tests for it (the ``self-tests`` verifier), and a program is kept when it passes
every generated test and belongs to the top CodeT consensus set ("CodeT: Code Generation with Generated
Tests", Chen et al. 2022, arXiv:2207.10397). ``reads_gold = False``; the gold tests are run only for the
report (``kept_gold_precision``: how many kept programs the gold tests pass). Compare with ``no-filter``.

On a program-aided task (``pal-arithmetic``: a program prints a value, there is no function to test) the
self-written test is a checking program, as in "ProgCo: Program Helps Self-Correction of Large Language
Models" (arXiv:2501.01264): the model writes one for each sample that printed a value (the ``program-verify``
verifier, ``answer`` bound to that value), the sandbox runs it, and a sample is kept when its checker's
asserts hold and its value is the most frequent among the checked samples (the agreement filter; ties keep
every tied value).

Not covered: SelfCodeAlign's seed-snippet concept extraction and self-written instructions (the problems are
given), and its response/test sampling per instruction beyond ``n``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from ...records import Example, Step, Trace, Verdict
from ...strategies.base import make_trace, score_traces
from ..data import complete_targets, correct_rows
from ..method import Built, Method, sample, sft_report


@dataclass(frozen=True)
class SelfCodeAlign(Method):
    """SFT on sampled programs that pass the model's own tests and lead its consensus (no gold)."""

    name = "self-code-align"
    paper = "SelfCodeAlign: Self-Alignment for Code Generation, arXiv:2410.24198"
    objective = "sft"
    reads_gold = False

    tests: int = 5
    """Tests the model writes per problem and sample of tests."""
    test_samples: int = 2
    """Samples of tests per problem (deduplicated together)."""
    max_per_example: int | None = 4
    """Cap on distinct kept programs per problem (None: no cap)."""

    def validate(self, cfg) -> None:
        if self.tests < 1 or self.test_samples < 1:
            raise ValueError(f"{self.name}: tests and test_samples must be >= 1")
        if self.max_per_example is not None and self.max_per_example < 1:
            raise ValueError(f"{self.name}: max_per_example must be >= 1 or None, got {self.max_per_example}")

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        from ...verifiers.execution import SelfTests

        task = loop.task
        if task.code == "program-aided":
            return self._collect_checked(loop, r, backend, examples)
        if task.code != "program":
            raise ValueError(
                f"{self.name} needs a code task (humaneval, mbpp, pal-arithmetic), not '{task.name}'")
        steps = sample(backend, task, examples, loop.cfg, r)
        writer = SelfTests(backend, task, samples=self.test_samples, tests_per_sample=self.tests,
                           max_tokens=loop.cfg.max_tokens)
        tests, written = writer.write_tests(examples)
        matrix = writer.pass_matrix(examples, [list(s.answers) for s in steps], tests)
        traces = []
        for e, s, ts, w, row in zip(examples, steps, tests, written, matrix):
            verdicts = _agreement_filter(row, len(ts))
            s = dataclasses.replace(s, verdicts=tuple(verdicts))
            kept = sum(bool(v.correct) for v in verdicts)
            traces.append(make_trace(e, self.name, [s, w], initial_answer=s.answers[0],
                                     final_answer=s.answers[0],
                                     confidence=kept / len(s.answers), kept_samples=kept, self_tests=len(ts)))
        return score_traces(task, examples, traces)

    def _collect_checked(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        """Program-aided tasks: a self-written checking program per valued sample, then the agreement
        filter."""
        from ...verifiers.execution import ProgramVerify

        task = loop.task
        steps = sample(backend, task, examples, loop.cfg, r)
        flat = [(i, j) for i, s in enumerate(steps) for j in range(len(s.answers))]
        checker = ProgramVerify(backend, task, max_tokens=loop.cfg.max_tokens)
        verdicts, written, _ = checker.check([examples[i] for i, _ in flat],
                                             [steps[i].answers[j] for i, j in flat],
                                             [steps[i].completions[j].text for i, j in flat])
        checks: list[list] = [[] for _ in examples]
        writes: list[list[Step]] = [[] for _ in examples]
        for (i, _), v, w in zip(flat, verdicts, written):
            checks[i].append(v)
            writes[i].extend(w)
        traces = []
        for e, s, vs, ws in zip(examples, steps, checks, writes):
            kept = _checked_agreement(list(s.answers), vs)
            s = dataclasses.replace(s, verdicts=tuple(kept))
            n_kept = sum(bool(v.correct) for v in kept)
            traces.append(make_trace(e, self.name, [s, *ws], initial_answer=s.answers[0],
                                     final_answer=s.answers[0], confidence=n_kept / len(s.answers),
                                     kept_samples=n_kept, self_tests=len(ws)))
        return score_traces(task, examples, traces)

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        rows = correct_rows(complete_targets(loop.task, traces), suffix=loop.cfg.target_suffix,
                            max_per_example=self.max_per_example,
                            round_idx=r)
        stats = sft_report(self, loop.task, examples, traces, rows)
        by_id = {e.id: e for e in examples}
        gold = loop.task.check_batch([(by_id[row.example_id], row.answer) for row in rows])  # report only
        stats["kept_gold_precision"] = (sum(bool(g) for g in gold) / len(gold)) if gold else None
        stats["problems_with_tests"] = sum(t.info.get("self_tests", 0) > 0 for t in traces)
        return Built(rows=rows, stats=stats)


def _agreement_filter(passes, n_tests: int) -> list[Verdict]:
    """Keep (correct=True) a program that passes every generated test and is in the largest consensus set."""
    from ...verifiers.execution import dual_agreement

    verdicts = dual_agreement(passes, n_tests)
    best = max((v.score for v in verdicts if v.score is not None), default=None)
    return [Verdict(v.score, bool(v.correct) and v.score == best and best > 0, v.reason) for v in verdicts]


def _checked_agreement(answers: list[str | None], checks: list[Verdict]) -> list[Verdict]:
    """Keep a sample whose checking program held and whose value is the most frequent among those that did."""
    held = Counter(a for a, v in zip(answers, checks) if a is not None and v.correct)
    top = max(held.values(), default=0)
    out = []
    for a, v in zip(answers, checks):
        keep = a is not None and bool(v.correct) and held[a] == top
        share = held[a] / len(answers) if a is not None and v.correct else 0.0
        out.append(Verdict(share, keep, f"self-written checker {'held' if v.correct else 'did not hold'}; "
                                        f"{held[a] if v.correct else 0} checked samples agree"))
    return out
