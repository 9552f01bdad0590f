"""The built-in synthetic task family: multi-operand sums solved with a free-order running-sum scratchpad.

Why this family. On a direct-answer task (reversed-digit a+b) greedy
decoding already returns the mode of the model's answer distribution, so majority vote and majority-vote
pseudo-labels have nothing to add (with one solution path, the majority answer is greedy's answer). Here each
problem has *many solution paths*: the scratchpad may add the operands in any order, each step copying the
operand it adds (with its letter label) and writing the new running sum. Sampled chains follow different
orders, so their copy and carry errors fall on different partial sums and are close to independent, while the
correct answer is the same on every path: the situation self-consistency exploits. Measured on the ``tiny``
model (one seed; docs/results/builtin-model.md): in range greedy 69.5 %, maj@16 75.5 %, pass@16 97.5 %; one
term beyond greedy 21.5 %. The difficulty knob is the number of terms (each extra term is one more step of the
same kind, so "one step beyond" the range is within reach); digits per operand are a second knob. The random
letter labels are not needed in principle, but a 2-layer model learned the any-order copy several times faster
with them than without them or with a fixed or rotated order.

Format (every number least-significant digit first, zero-padded to a fixed ``width``, so that the digits to
add sit at constant distances, which a 2-layer model learns quickly), e.g. 12+345+6+78 with width 4:

    solve    prompt   ``a2100 k5430 c6000 x8700:``
             answer   `` c6000=6000 a2100=8100 x8700=6900 k5430=1440 #1440``   (one of 24 orders)
    verify   prompt   solve prompt + candidate solution + `` ?``      answer `` yes`` / `` no``
    correct  prompt   solve prompt + candidate solution + `` !``      answer the reviewed answer `` #1440``
    hint     prompt   solve prompt + `` #1440:``                      answer a solution (STaR rationalisation)

and with ``verify=2`` (the ``tiny-verify`` model), where the candidate is shown by its answer only:

    verify   prompt   ``a2100 k5430 c6000 x8700 #1540 ?``
             answer   a solution in question order `` ... #1440``, `` #1540 ; 11= 45x 44= 00= | no``
    correct  prompt   ``a2100 k5430 c6000 x8700 #1540 !``            answer a solution in question order

``extract`` reads the number after the last ``#`` and returns it as a plain decimal string (``"441"``).
Covered: addition only (``op=add``); operands of ``digits`` digits; ``terms`` operands. Not covered:
subtraction, multiplication, carry-free variants, natural-language word problems.
"""

from __future__ import annotations

import hashlib
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UserError
from ..records import Example
from .base import Task

LABELS = string.ascii_lowercase
OPS = ("add",)
"""Supported operations."""
SPLIT_SIZES = {"train": 1000, "dev": 200, "test": 500}
_FINAL = re.compile(r"#\s*([0-9]+)")
_VERDICT = re.compile(r"^\W*(yes|no)\b")


@dataclass(frozen=True)
class Problem:
    """One problem: operand values and their labels, in question order."""

    operands: tuple[int, ...]
    """Operand values, in the order the question lists them."""
    labels: str
    """One distinct lowercase letter per operand (random: the model must not rely on their order)."""

    @property
    def total(self) -> int:
        return sum(self.operands)


class ArithmeticTask(Task):
    """Sums of ``terms`` operands of ``digits`` digits; splits are deterministic in ``seed``.

    Splits: ``train``, ``dev``, ``test`` (in range, pairwise disjoint), ``test-hard`` (one term beyond the
    range), ``terms=K`` / ``terms=K-L`` and ``digits=D`` (held-out problems at that difficulty), and
    ``train:terms=K`` etc. (a training pool at that difficulty, disjoint from the held-out split of the same
    name: easy-to-hard pseudo-labels these and is evaluated on the held-out ones).
    """

    name = "arithmetic"
    stop = ("\n",)

    def __init__(self, op: str = "add", terms: tuple[int, int] = (2, 4), digits: tuple[int, int] = (1, 2),
                 width: int | None = None, seed: int = 0, n_train: int = SPLIT_SIZES["train"],
                 n_dev: int = SPLIT_SIZES["dev"], n_test: int = SPLIT_SIZES["test"], verify: int = 1) -> None:
        if op not in OPS:
            raise UserError(f"unknown op {op!r}; supported: {', '.join(OPS)}", field="op")
        terms, digits = tuple(terms), tuple(digits)
        if not 1 <= terms[0] <= terms[1] <= 20:
            raise UserError(f"terms must be a range within 1-20, got {terms[0]}-{terms[1]}", field="terms")
        if not 1 <= digits[0] <= digits[1] <= 12:
            raise UserError(f"digits must be a range within 1-12, got {digits[0]}-{digits[1]}",
                            field="digits")
        # Width leaves room for the largest sum two terms beyond the range, so harder splits keep the format.
        need = len(str((terms[1] + 2) * (10 ** digits[1] - 1)))
        width = need if width is None else int(width)
        if width < need:
            raise UserError(f"width {width} is too narrow for {terms[1]}+2 terms of {digits[1]} digits; "
                            f"use width>={need} or leave it out", field="width")
        for key, n in (("n_train", n_train), ("n_dev", n_dev), ("n_test", n_test)):
            if n < 1:
                raise UserError(f"{key} must be >= 1, got {n}", field=key)
        if verify not in VERIFY_FORMATS:
            raise UserError(f"verify must be one of {VERIFY_FORMATS} (the verify/correct format "
                            f"version), got {verify!r}", field="verify")
        self.op, self.terms, self.digits, self.width, self.seed = op, terms, digits, width, int(seed)
        self.verify = self.verify_format = int(verify)
        self.sizes = {"train": int(n_train), "dev": int(n_dev), "test": int(n_test)}

    # ---- construction from CLI options -------------------------------------------------------------------
    @classmethod
    def from_options(cls, options: dict[str, str], data: str | None = None) -> ArithmeticTask:
        """Build from ``--task arithmetic:op=add,terms=2-5,digits=1-3,seed=0`` style options."""
        if data is not None:
            raise UserError("task 'arithmetic' is synthetic and takes no --data", field="data")
        kwargs: dict = {}
        for key, raw in options.items():
            value = str(raw).strip()
            if key == "op":
                kwargs["op"] = value
            elif key in ("terms", "digits"):
                kwargs[key] = _parse_range(key, value)
            elif key in ("width", "seed", "n_train", "n_dev", "n_test", "verify"):
                try:
                    kwargs[key] = int(value)
                except ValueError:
                    raise UserError(f"expected an integer, got {value!r}", field=key) from None
            else:
                known = "op, terms, digits, width, seed, n_train, n_dev, n_test, verify"
                raise UserError(f"unknown option {key!r} for task arithmetic; known: {known}", field=key)
        return cls(**kwargs)

    def describe(self) -> str:
        return (f"arithmetic:op={self.op},terms={self.terms[0]}-{self.terms[1]},"
                f"digits={self.digits[0]}-{self.digits[1]},width={self.width},seed={self.seed}"
                + (f",verify={self.verify}" if self.verify != 1 else ""))

    # ---- splits ------------------------------------------------------------------------------------------
    def examples(self, split: str) -> list[Example]:
        terms, digits, size, salt = self._split_spec(split)
        held_out = set()
        if split == "train":  # train never contains a dev or test problem
            held_out = {tuple(e.meta["operands"]) for s in ("dev", "test") for e in self.examples(s)}
        elif split == "dev":
            held_out = {tuple(e.meta["operands"]) for e in self.examples("test")}
        elif split.startswith("train:"):  # a training pool never contains a held-out problem of any split
            held = ("dev", "test", "test-hard", split.removeprefix("train:"))
            held_out = {tuple(e.meta["operands"]) for s in dict.fromkeys(held) for e in self.examples(s)}
        rng = random.Random(_seed(self.seed, salt))
        out, seen = [], set(held_out)
        attempts = 0
        while len(out) < size and attempts < size * 50:
            attempts += 1
            p = self.sample_problem(rng, terms, digits)
            if p.operands in seen:
                continue
            seen.add(p.operands)
            out.append(self.make_example(p, f"{split}-{len(out):05d}", split))
        return out

    def _split_spec(self, split: str):
        if split in self.sizes:
            return self.terms, self.digits, self.sizes[split], split
        if split == "test-hard":
            k = self.terms[1] + 1
            return (k, k), self.digits, self.sizes["test"], split
        m = re.fullmatch(r"(train:)?(terms|digits)=(\d+)(?:-(\d+))?", split)
        if m:
            lo, hi = int(m.group(3)), int(m.group(4) or m.group(3))
            terms = (lo, hi) if m.group(2) == "terms" else self.terms
            digits = (lo, hi) if m.group(2) == "digits" else self.digits
            if not 1 <= terms[0] <= terms[1] <= 20 or not 1 <= digits[0] <= digits[1]:
                raise UserError(f"split {split!r} is out of range", field="split")
            if len(str(terms[1] * (10 ** digits[1] - 1))) > self.width:
                raise UserError(f"split {split!r} needs sums wider than width={self.width}; "
                                f"build the task with a larger width", field="split")
            return terms, digits, self.sizes["train" if m.group(1) else "test"], split
        raise UserError(f"unknown split {split!r}; use train, dev, test, test-hard, terms=K, digits=D or "
                        f"train:terms=K",
                        field="split")

    def sample_problem(self, rng: random.Random, terms=None, digits=None) -> Problem:
        """A random problem: term count uniform in ``terms``, each operand's digit count uniform in
        ``digits``."""
        t_lo, t_hi = terms or self.terms
        d_lo, d_hi = digits or self.digits
        k = rng.randint(t_lo, t_hi)
        ops = []
        for _ in range(k):
            d = rng.randint(d_lo, d_hi)
            ops.append(rng.randint(0 if d == 1 else 10 ** (d - 1), 10 ** d - 1))
        return Problem(tuple(ops), "".join(rng.sample(LABELS, k)))

    def make_example(self, p: Problem, ex_id: str, split: str = "") -> Example:
        return Example(id=f"arith-{ex_id}", question="+".join(map(str, p.operands)), answer=str(p.total),
                       meta={"operands": list(p.operands), "labels": p.labels, "terms": len(p.operands),
                             "digits": max(len(str(v)) for v in p.operands), "difficulty": len(p.operands),
                             "split": split})

    def pool_split(self, split: str) -> str | None:
        """The training pool at the difficulty of held-out ``split`` (``train:terms=K`` for ``terms=K``; the
        pool of ``test-hard`` is ``train:terms=<max terms + 1>``), disjoint from dev, test, test-hard and
        ``split``; None for a split with no difficulty of its own (train, dev, test). Easy-to-hard
        pseudo-labels the pool and is evaluated on ``split``."""
        if split == "test-hard":
            split = f"terms={self.terms[1] + 1}"
        if not re.fullmatch(r"(terms|digits)=\d+(?:-\d+)?", split):
            return None
        self._split_spec(split)  # a split out of range is the caller's error: raise it here
        return f"train:{split}"

    def harder_splits(self, n: int) -> tuple[str, ...]:
        """``terms=K+1`` … ``terms=K+n`` for a training range of at most K terms."""
        return tuple(f"terms={self.terms[1] + i}" for i in range(1, n + 1))

    def extra_eval_splits(self) -> tuple[str, ...]:
        return ("test-hard",)

    # ---- prompts -----------------------------------------------------------------------------------------
    def problem(self, example: Example) -> Problem:
        try:
            p = Problem(tuple(int(v) for v in example.meta["operands"]), str(example.meta["labels"]))
        except (KeyError, TypeError, ValueError):
            p = None
        if p is None or len(p.labels) != len(p.operands) or len(set(p.labels)) != len(p.labels):
            raise UserError("an arithmetic example needs meta.operands (integers) and meta.labels (one "
                            "distinct letter per operand)",
                            example_id=example.id, field="meta")
        return p

    def encode(self, value: int) -> str:
        """A number as the model writes it: digits reversed, zero-padded to ``width``."""
        return str(value)[::-1].ljust(self.width, "0")

    def prompt(self, example: Example) -> str:
        p = self.problem(example)
        return " ".join(f"{lab}{self.encode(v)}" for lab, v in zip(p.labels, p.operands)) + ":"

    def verify_prompt(self, example: Example, candidate_text: str) -> str:
        """Ask whether ``candidate_text`` (a solve completion) is right.

        Format 1 (default): the problem, the whole candidate chain and `` ?``; the model answers `` yes`` or
        `` no`` at once. Format 2 (``verify=2``): the problem, only the candidate's answer `` #<answer>`` and
        `` ?``; the model *re-solves* before it judges — see ``verify_target``. Format 1 is what the built-in
        ``tiny`` model learned (and its verify scores at chance); ``tiny-verify`` learned format 2."""
        if self.verify == 2:
            return self.prompt(example)[:-1] + self._candidate(candidate_text) + " ?"
        return self.prompt(example) + _one_line(candidate_text) + " ?"

    @property
    def verify_think(self) -> str | None:
        """Where the verify format's rationale ends and its verdict begins (format 2: `` |``; P(True) reads
        P(`` yes``) after it), or None when the verdict comes at once (format 1)."""
        return "|" if self.verify == 2 else None

    def verify_target(self, example: Example, candidate_text: str) -> str:
        """What the verify format writes after ``verify_prompt(example, candidate_text)`` when it judges
        right. Format 2: its own solution in question order, the candidate's answer copied beside its own, one
        mark per digit (``<own digit><candidate digit><= or x>``), `` |`` and `` yes`` when every digit
        matched — each token a copy or a comparison of two adjacent tokens, which a 2-layer model learns (a
        verdict over two numbers at a distance stayed at chance; docs/results/builtin-model.md)."""
        cand = self._candidate(candidate_text)[2:]
        own = self.encode(int(example.answer))
        verdict = "yes" if own == cand else "no"
        if self.verify != 2:
            return f" {verdict}"
        marks = " ".join(f"{a}{b}{'=' if a == b else 'x'}" for a, b in zip(own, cand))
        return f"{self.solution(example)} #{cand} ; {marks} {self.verify_think} {verdict}"

    def correct_prompt(self, example: Example, candidate_text: str) -> str:
        """Ask for a reviewed answer to ``candidate_text`` (format 1: after the whole chain and `` !``, the
        answer `` #<answer>`` at once; format 2: after the candidate's answer and `` !``, a solution in
        question order). ``extract`` reads the last `` #<answer>``."""
        if self.verify == 2:
            return self.prompt(example)[:-1] + self._candidate(candidate_text) + " !"
        return self.prompt(example) + _one_line(candidate_text) + " !"

    def correct_target(self, example: Example, answer: str | None = None) -> str:
        """What the correct format writes after ``correct_prompt`` (the gold answer by default), exactly as
        the built-in model was pretrained to write it: `` #<answer>`` (format 1) or a solution ending in it
        (2)."""
        value = int(example.answer if answer is None else answer)
        if self.verify == 2:
            p = self.problem(example)
            return self.render(p, range(len(p.operands)), final=value)
        return f" #{self.encode(value)}"

    def _candidate(self, candidate_text: str) -> str:
        answer = self.extract(candidate_text)
        return f" #{self.encode(int(answer))}" if answer is not None else " #" + "?" * self.width

    def hint_prompt(self, example: Example, answer: str | None = None) -> str:
        """The solve prompt with the final answer given as a hint (STaR rationalisation)."""
        answer = example.answer if answer is None else answer
        return self.prompt(example)[:-1] + f" #{self.encode(int(answer))}:"

    def step_format(self):
        """Search steps: one scratchpad entry (`` a2100=2100``) per step, each opened by a space; the path is
        finished once it writes `` #<answer>``. Verify format 2 shows only a candidate's answer, so P(True)
        cannot judge a partial solution there (``judges_partial``)."""
        from .steps import StepFormat

        return StepFormat(delimiter=" ", opening=True, final=r"#\s*[0-9]", judges_partial=self.verify != 2)

    verdict_continuations = (" yes", " no")
    """The two answers of the verify format, for log-likelihood scoring (P(True) = P(" yes"))."""

    def formats(self):
        """The trained verify and correct formats (the verdict doubles as feedback), the generic rest."""
        from ..prompts import task_formats

        return task_formats(self, verify=self.verify_prompt, correct=self.correct_prompt,
                            parse_verdict=self.parse_verdict,
                            verdict_continuations=self.verdict_continuations,
                            verify_think=self.verify_think)

    # ---- answers -----------------------------------------------------------------------------------------
    def solution(self, example: Example, order: Sequence[int] | None = None) -> str:
        """The gold solve completion, adding the operands in ``order`` (indices; question order by
        default)."""
        p = self.problem(example)
        return self.render(p, range(len(p.operands)) if order is None else order)

    def render(self, p: Problem, order: Sequence[int] | str, partials: list[int] | None = None,
               copies: list[int] | None = None, final: int | None = None) -> str:
        """A solution adding the operands in ``order`` (indices, or a string of labels); ``partials`` /
        ``copies`` / ``final`` override the true running sums, copied operands and answer (to write wrong
        ones)."""
        if isinstance(order, str):
            order = [p.labels.index(lab) for lab in order]
        parts, running = [], 0
        for i, j in enumerate(order):
            shown = copies[i] if copies is not None else p.operands[j]
            running = partials[i] if partials is not None else running + shown
            parts.append(f" {p.labels[j]}{self.encode(shown)}={self.encode(running)}")
        total = running if final is None else final
        return "".join(parts) + f" #{self.encode(total)}"

    def extract(self, text: str) -> str | None:
        """The decimal value after the last ``#``, or None when there is none or it is not ``width``
        digits."""
        found = _FINAL.findall(text or "")
        if not found:
            return None
        digits = found[-1]
        if len(digits) != self.width:  # the format writes every number at exactly ``width`` digits
            return None
        return str(int(digits[::-1]))

    def parse_verdict(self, text: str) -> bool | None:
        """``yes`` → True, ``no`` → False, anything else → None; in format 2 the verdict after the last
        ``verify_think`` marker (the rationale comes first)."""
        text = (text or "").lower()
        if self.verify_think and self.verify_think in text:
            text = text.rsplit(self.verify_think, 1)[1]
        m = _VERDICT.match(text)
        return None if m is None else m.group(1) == "yes"

    def equivalent(self, a: str | None, b: str | None) -> bool:
        if a is None or b is None:
            return False
        try:
            return int(a) == int(b)
        except ValueError:
            return a.strip() == b.strip()


VERIFY_FORMATS = (1, 2)
"""Versions of the verify/correct formats (``ArithmeticTask.verify_prompt``)."""


def _parse_range(key: str, value: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)(?:-(\d+))?", value)
    if not m:
        raise UserError(f"expected N or N-M (e.g. 2-5), got {value!r}", field=key)
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    if lo > hi:
        raise UserError(f"range {value!r} is empty; write the smaller bound first", field=key)
    return lo, hi


def _one_line(text: str) -> str:
    # A candidate is a solve completion; newlines would end the prompt format, so they become spaces.
    return " " + " ".join((text or "").split())


def _seed(seed: int, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{salt}".encode()).digest()[:8], "big")
