"""One-step arithmetic word problems, generated here (no data files): a natural-language task on which a small
real chat model (the built-in ``smollm2``) is neither at 0 % nor at 100 %, so inference strategies and
self-training have room to move.

Each problem is one operation on small whole numbers, written from a template with a name and an object:
``add`` ("Maya has 23 marbles and finds 15 more. How many marbles does Maya have now?"), ``sub``, ``mul``
("A box holds 6 eggs. How many eggs are in 7 boxes?") and ``div`` (equal sharing, always exact). Splits
``train`` / ``dev`` / ``test`` are deterministic in ``seed`` and pairwise disjoint (a problem's split is a
hash of its text). ``solution(example)`` writes a one-line worked answer.

Prompt (a conversation, ``selfimprove.chat``):

    system  Solve the word problem. Show the calculation in one short sentence, then end with
            'The answer is <number>.'
    (``shots=K``: K worked examples from the train split first, one operation after another (add, sub, mul,
    div, add, ...), as user/assistant turns whose reply is the one-line worked answer "a - b = c. The answer
    is c.")
    user    <question>

Extraction: the number after the last "the answer is" (else the last number), whole numbers only.
Not covered: multi-step problems (use gsm8k), units, fractions, negative results.
"""

from __future__ import annotations

import hashlib
import random

from ..answers import extract_number
from ..chat import few_shot
from ..errors import UserError
from ..records import Example
from .base import Task, pick_shots

SYSTEM = ("Solve the word problem. Show the calculation in one short sentence, then end with "
          "'The answer is <number>.'")
NAMES = ("Maya", "Tom", "Aisha", "Leo", "Priya", "Omar", "Sara", "Ken", "Lena", "Ravi", "Noor", "Ivan")
THINGS = ("marbles", "apples", "stickers", "books", "shells", "coins", "pencils", "stamps", "cards", "eggs")
OPS = ("add", "sub", "mul", "div")
SIZES = {"train": 1000, "dev": 200, "test": 400}


def _problem(rng: random.Random, op: str, hi: int) -> tuple[str, int, str]:
    """(question, answer, worked solution) of one problem."""
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    if op == "add":
        a, b = rng.randint(2, hi), rng.randint(2, hi)
        return (f"{name} has {a} {thing} and finds {b} more. How many {thing} does {name} have now?", a + b,
                f"{a} + {b} = {a + b}.")
    if op == "sub":
        a = rng.randint(4, hi)
        b = rng.randint(1, a - 1)
        return (f"{name} had {a} {thing} and gave {b} of them away. How many {thing} does {name} have left?",
                a - b, f"{a} - {b} = {a - b}.")
    k, m = rng.randint(2, 9), rng.randint(2, max(2, hi // 10))
    if op == "mul":
        return (f"A bag holds {m} {thing}. How many {thing} are in {k} bags?", k * m, f"{k} x {m} = {k * m}.")
    question = (f"{name} shares {k * m} {thing} equally among {k} friends. How many {thing} does each "
                "friend get?")
    return (question, m, f"{k * m} / {k} = {m}.")


class WordProblemsTask(Task):
    """One-step arithmetic word problems (add, sub, mul, div) on numbers up to ``max_value``; generated."""

    name = "word-problems"
    stop = ("\nQuestion:",)

    def __init__(self, ops: str = "add|sub|mul|div", max_value: int = 60, seed: int = 0,
                 shots: int = 0) -> None:
        chosen = tuple(o for o in str(ops).split("|") if o)
        if not chosen or set(chosen) - set(OPS):
            raise UserError(f"ops must be '|'-separated names from {', '.join(OPS)}, got {ops!r}",
                            field="ops")
        if not 10 <= max_value <= 10_000:
            raise UserError(f"max_value must be in 10..10000, got {max_value}", field="max_value")
        if not 0 <= int(shots) <= 16:
            raise UserError(f"shots must be in 0..16, got {shots}", field="shots")
        self.ops, self.max_value, self.seed, self.shots = chosen, int(max_value), int(seed), int(shots)
        self._splits: dict[str, list[Example]] | None = None
        self._shots: list[tuple[str, str]] | None = None

    def describe(self) -> str:
        shots = f",shots={self.shots}" if self.shots else ""
        return f"{self.name}:ops={'|'.join(self.ops)},max_value={self.max_value},seed={self.seed}{shots}"

    def examples(self, split: str = "test") -> list[Example]:
        if split not in SIZES:
            raise UserError(f"task 'word-problems' has splits {', '.join(SIZES)}, not {split!r}",
                            field="split")
        if self._splits is None:
            self._splits = self._generate()
        return list(self._splits[split])

    def _generate(self) -> dict[str, list[Example]]:
        rng = random.Random(f"word-problems|{self.seed}|{'|'.join(self.ops)}|{self.max_value}")
        out: dict[str, list[Example]] = {s: [] for s in SIZES}
        seen: set[str] = set()
        for _ in range(200 * sum(SIZES.values())):
            if all(len(out[s]) >= n for s, n in SIZES.items()):
                break
            question, answer, worked = _problem(rng, rng.choice(self.ops), self.max_value)
            if question in seen:
                continue
            seen.add(question)
            h = int.from_bytes(hashlib.sha256(question.encode()).digest()[:4], "big") % 16
            split = "train" if h < 10 else "dev" if h < 12 else "test"  # by text: disjoint whatever the seed
            if len(out[split]) < SIZES[split]:
                out[split].append(Example(id=f"{split}-{len(out[split])}", question=question,
                                          answer=str(answer),
                                          meta={"solution": f"{worked} The answer is {answer}."}))
        return out

    def prompt(self, example: Example) -> str:
        if self._shots is None:
            self._shots = [(e.question, self.solution(e)) for e in self._pick_shots()]
        return few_shot(SYSTEM, self._shots, example.question)

    def _pick_shots(self) -> list[Example]:
        """``shots`` train examples taking the operations in turn (the first unused problem of each)."""
        symbol = {"add": " + ", "sub": " - ", "mul": " x ", "div": " / "}
        pool = pick_shots(self, SIZES["train"]) if self.shots else []
        by_op = [[e for e in pool if symbol[op] in e.meta["solution"]] for op in self.ops]
        return [by_op[i % len(by_op)][i // len(by_op)] for i in range(self.shots)]

    def extract(self, text: str) -> str | None:
        return extract_number(text, fractions=False)

    def solution(self, example: Example) -> str:
        return example.meta["solution"]
