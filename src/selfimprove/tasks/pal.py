"""Program-aided arithmetic: the built-in arithmetic problems, answered by a Python program whose printed
value is the answer.

"PAL: Program-aided Language Models" (Gao et al. 2022, arXiv:2211.10435): the model writes a program and an
interpreter computes the answer. The examples, splits and gold answers are the built-in ``arithmetic`` task's
(same seeds); the prompt shows the sum in ordinary decimal notation. ``extract`` runs the completion's program
in the sandbox (batched by ``extract_many``, cached per program) and reads the last line it printed as a
number; a program that fails, prints nothing numeric or times out is unparseable (``None``) and counted. The
program's output is execution feedback, never the gold answer: no gold is read until ``check``.

``pal-word-problems`` asks for a program that answers one of the generated ``word-problems`` (same splits and
golds): the model must turn the words into the arithmetic, so a small model is not at its ceiling there. As in
PAL's prompts, ``shots=K`` (default 4) worked examples come first: the first training problems, one of each
operation before any repeats, each answered by a one-line program (``print(7 - 6)``); without them
SmolLM2-135M writes long programs that never finish.

Not covered: GSM8K-style PAL prompts with worked examples, programs that read input.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from ..chat import few_shot
from ..errors import UserError
from ..records import Example
from ..sandbox import Job, RunResult
from .arithmetic import ArithmeticTask
from .base import pick_shots
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


class PalWordProblemsTask(PalArithmeticTask):
    """The generated one-step word problems, answered by a program
    (``--task pal-word-problems:max_value=60``)."""

    name = "pal-word-problems"

    def __init__(self, ops: str = "add|sub|mul|div", max_value: int = 60, seed: int = 0, shots: int = 4,
                 timeout_s: float = 5.0, workers: int = 2, unsafe_exec: bool = False) -> None:
        from .word_problems import WordProblemsTask

        if not 0 <= int(shots) <= 8:
            raise UserError(f"shots must be in 0..8, got {shots}", field="shots")
        CodeTask.__init__(self, timeout_s=timeout_s, workers=workers, unsafe_exec=unsafe_exec)
        self.words = WordProblemsTask(ops=ops, max_value=int(max_value), seed=int(seed))
        self.shots = int(shots)
        self._shots: list[tuple[str, str]] | None = None
        self._runs = {}

    def describe(self) -> str:
        return (self.words.describe().replace("word-problems", self.name, 1) + f",shots={self.shots}"
                + (",unsafe_exec=true" if self.unsafe_exec else ""))

    def examples(self, split: str) -> list[Example]:
        return [Example(id=f"pal-{e.id}", question=e.question, answer=e.answer, meta=e.meta)
                for e in self.words.examples(split)]

    def pool_split(self, split: str) -> str | None:
        return None

    def harder_splits(self, n: int) -> tuple[str, ...]:
        return ()

    def prompt(self, example: Example) -> str:
        """``shots`` worked examples (the first train problems with their one-line programs) as earlier turns,
        then the question."""
        if self._shots is None:
            self._shots = [(self._ask(e), self.solution(e)) for e in self._varied_shots()]
        return few_shot(None, self._shots, self._ask(example))

    def _varied_shots(self) -> list[Example]:
        """The first ``shots`` training problems, taking one of each operation before repeating any."""
        pool = pick_shots(self, 200)
        op = (lambda e: next(c for c in "+-x/" if f" {c} " in e.meta["solution"]))
        picked: list[Example] = []
        while len(picked) < self.shots:
            seen = {op(e) for e in picked}
            picked.append(next((e for e in pool if e not in picked and op(e) not in seen),
                               next(e for e in pool if e not in picked)))
        return picked

    def equivalent(self, a: str | None, b: str | None) -> bool:
        return self.words.equivalent(a, b)

    @staticmethod
    def _ask(example: Example) -> str:
        return (f"{example.question}\nWrite a short Python program that computes the answer and prints "
                "it as a number. Answer with the program in a ```python code block.")

    def solution(self, example: Example) -> str | None:
        worked = example.meta["solution"].split("=")[0].replace(" x ", " * ").replace(" / ", " // ").strip()
        return f"```python\nprint({worked})\n```"
