"""Program-aided arithmetic: the built-in arithmetic problems, answered by a Python program whose printed
value is the answer.

"PAL: Program-aided Language Models" (Gao et al. 2022, arXiv:2211.10435): the model writes a program and an
interpreter computes the answer. The examples, splits and gold answers are the built-in ``arithmetic`` task's
(same seeds); the prompt shows the sum in ordinary decimal notation. ``extract`` runs the completion's program
in the sandbox (batched by ``extract_many``, cached per program) and reads the last line it printed as a
number; a program that fails, prints nothing numeric or times out is unparseable (``None``) and counted. The
program's output is execution feedback, never the gold answer: no gold is read until ``check``.

Not covered: word problems (GSM8K-style PAL prompts with worked examples), programs that read input.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from ..errors import UserError
from ..records import Example
from ..sandbox import Job, RunResult
from .arithmetic import ArithmeticTask
from .code import CodeTask, closed_block, extract_code

_NUMBER = re.compile(r"^-?\d+(?:\.0+)?$")


class PalArithmeticTask(CodeTask):
    """The built-in arithmetic problems as program-aided questions
    (``--task pal-arithmetic:terms=2-4,...``)."""

    name = "pal-arithmetic"
    code = "program-aided"

    def __init__(self, terms: str = "2-4", digits: str = "1-2", seed: int = 0, timeout_s: float = 5.0,
                 workers: int = 2, unsafe_exec: bool = False) -> None:
        super().__init__(timeout_s=timeout_s, workers=workers, unsafe_exec=unsafe_exec)
        self.arith = ArithmeticTask.from_options({"terms": terms, "digits": digits, "seed": str(seed)})
        self.terms, self.digits, self.seed = terms, digits, int(seed)
        self._runs: dict[str, RunResult] = {}

    def describe(self) -> str:
        return (f"{self.name}:terms={self.terms},digits={self.digits},seed={self.seed}"
                + (",unsafe_exec=true" if self.unsafe_exec else ""))

    def examples(self, split: str) -> list[Example]:
        return [Example(id=e.id.replace("arith-", "pal-", 1), question=e.question, answer=e.answer,
                        meta=e.meta)
                for e in self.arith.examples(split)]

    def pool_split(self, split: str) -> str | None:
        return self.arith.pool_split(split)

    def harder_splits(self, n: int) -> tuple[str, ...]:
        return self.arith.harder_splits(n)

    def prompt(self, example: Example) -> str:
        expr = " + ".join(str(v) for v in example.meta["operands"])
        return (f"Write a Python program that prints the value of {expr}.\n"
                "Answer with the program in a ```python code block.\n")

    def solution(self, example: Example) -> str | None:
        expr = " + ".join(str(v) for v in example.meta["operands"])
        return f"```python\nprint({expr})\n```"

    # ---- answers: the value the program prints ------------------------------------------------------------
    def execute(self, programs: Sequence[str]) -> list[RunResult]:
        """Run each program in script mode (cached by its text); one result per program."""
        keys = [hashlib.sha256(p.encode()).hexdigest() for p in programs]
        todo = {k: p for k, p in zip(keys, programs) if k not in self._runs}
        fresh = dict(zip(todo, self.run([Job(p) for p in todo.values()]))) if todo else {}
        for k, r in fresh.items():
            if r.status != "error":  # a worker failure is not cached: it may succeed on a retry
                self._runs[k] = r
        return [self._runs.get(k) or fresh[k] for k in keys]

    def value(self, result: RunResult) -> str | None:
        """The number on the last line a finished program printed, normalised; None otherwise."""
        if result.status != "passed":
            return None
        lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        if not lines or not _NUMBER.match(lines[-1]):
            return None
        return str(int(float(lines[-1])))

    def complete_part(self, text: str) -> str | None:
        return closed_block(text)

    def extract(self, text: str) -> str | None:
        return self.extract_many([text])[0]

    def extract_many(self, texts: Sequence[str]) -> list[str | None]:
        programs = [extract_code(t) for t in texts]
        runnable = [p for p in programs if p is not None]
        results = iter(self.execute(runnable))
        return [None if p is None else self.value(next(results)) for p in programs]

    def equivalent(self, a: str | None, b: str | None) -> bool:
        return self.arith.equivalent(a, b)

    def check(self, example: Example, answer: str | None) -> bool | None:
        if answer is None or example.answer is None:
            return None
        return self.equivalent(answer, example.answer)

    def check_batch(self, pairs):
        return [self.check(e, a) for e, a in pairs]

    def default_verifier(self):
        from ..verifiers.match import GoldMatch

        return GoldMatch(self)

    def gold_job(self, example: Example, answer: str) -> Job:
        raise UserError("pal-arithmetic answers are values, checked against the gold number, not by tests")
