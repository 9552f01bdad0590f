"""A deterministic fake backend for fast tests: prompt patterns → completions with log-probabilities.

Rules are tried in order; the first whose regular expression matches the prompt (``re.search``) answers.
A rule's replies are a list; sample ``i`` of a prompt gets ``replies[i % len(replies)]`` when sampling and
``replies[0]`` when greedy. A reply is a text, or a ``(text, logprob_per_token)`` pair. Tokens are
characters, so token counts and log-probabilities are predictable. A reply of ``ScriptedBackend.FAIL``
produces a failed completion (finish_reason 'error'), as a server past its retries would.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence

from ..records import Completion, SamplingParams
from .base import Capabilities, apply_stop

Reply = str | tuple[str, float]


class ScriptedBackend:
    name = "scripted"
    capabilities = Capabilities(seed=True, logprobs=True, loglikelihood=True)
    FAIL = "\x00FAIL"

    def __init__(self, rules: Sequence[tuple[str, Sequence[Reply] | Callable[[str, int], Reply]]] = (),
                 default: Reply | None = "", loglikelihoods: dict[str, float] | None = None,
                 ll: Callable[[str, str], float] | None = None) -> None:
        self.rules = [(re.compile(p), r) for p, r in rules]
        self.default = default
        self.loglikelihoods = dict(loglikelihoods or {})
        self.ll = ll
        self.scored: list[tuple[str, str]] = []
        """Every (prompt, continuation) scored by ``loglikelihood``, in order (tests read this)."""
        self.calls: list[tuple[str, SamplingParams]] = []
        """Every prompt received, in order, with its parameters (tests read this)."""

    def fingerprint(self) -> str:
        spec = [(p.pattern, r if not callable(r) else r.__qualname__) for p, r in self.rules]
        return "scripted-" + hashlib.sha256(json.dumps([spec, self.default], default=str).encode()
                                            ).hexdigest()[:16]

    def _reply(self, prompt: str, i: int, params: SamplingParams) -> Reply:
        for pattern, replies in self.rules:
            if pattern.search(prompt):
                if callable(replies):
                    return replies(prompt, i)
                return replies[0] if params.greedy else replies[i % len(replies)]
        if self.default is None:
            raise KeyError(f"scripted backend has no rule for prompt: {prompt[:80]!r}")
        return self.default

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for prompt in prompts:
            self.calls.append((prompt, params))
            row = []
            for i in range(params.n):
                reply = self._reply(prompt, i, params)
                text, lp = (reply, -0.1) if isinstance(reply, str) else reply
                if text == self.FAIL:
                    row.append(Completion(text="", finish_reason="error", prompt_tokens=len(prompt),
                                          error="scripted failure"))
                    continue
                text, _ = apply_stop(text, params.stop)
                finish = "stop"
                if len(text) > params.max_tokens:
                    text, finish = text[: params.max_tokens], "length"
                row.append(Completion(text=text, token_logprobs=tuple([lp] * len(text)), finish_reason=finish,
                                      prompt_tokens=len(prompt), completion_tokens=len(text),
                                      logprobs_source="raw"))
            out.append(row)
        return out

    def loglikelihood(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Scripted: ``ll(prompt, continuation)`` when given, else ``loglikelihoods[continuation]``, else -0.1
        per character."""
        if len(prompts) != len(continuations):
            raise ValueError(f"loglikelihood needs one continuation per prompt, got {len(prompts)} prompts "
                             f"and {len(continuations)} continuations")
        self.scored.extend(zip(prompts, continuations))
        if self.ll is not None:
            return [self.ll(p, c) for p, c in zip(prompts, continuations)]
        return [self.loglikelihoods.get(c, -0.1 * len(c)) for c in continuations]


# ---- the `scripted` model: a noisy calculator that also speaks the built-in arithmetic task's formats ------

_EXPR = re.compile(r"\d+(?:\s*[-+*]\s*\d+)+")
_OPERANDS = r"((?:[a-z]\d+ )*[a-z]\d+)"
_SOLVE = re.compile(_OPERANDS + r":$")
_HINT = re.compile(_OPERANDS + r" #(\d+):$")
_REVIEW = re.compile(_OPERANDS + r"(:.*| #[0-9?]+) ([?!])$")
_ASKED = re.compile(_OPERANDS + r"(:.*?| #[0-9?]+) \?")
_FINAL = re.compile(r"#\s*([0-9]+)")
_CONTINUE = re.compile(_OPERANDS + r":((?: [a-z]\d+=\d+)*) ?$")
_STEP = re.compile(r" ([a-z])(\d+)=(\d+)")
_PAL = re.compile(r"prints the value of (\d+(?: \+ \d+)*)\.")


class ScriptedCalculator(ScriptedBackend):
    """The ``scripted`` model (no weights): right answers with deterministic errors, in the prompt's format.

    - The built-in ``arithmetic`` task's prompts (solve, hint, verify ``?`` and correct ``!``, both verify
      formats): it writes the task's running-sum solution; a solve sample is wrong (its final sum off by 1–9)
      with probability ``error_rate``, deterministically per (seed, prompt, sample); a hinted prompt is solved
      to the hinted answer; a verdict or a correction is right except with probability ``error_rate / 2``;
      P(" yes") after a verify prompt is 0.8 for a right candidate and 0.3 for a wrong one (for a partial
      solution, one whose running sums are right so far).
    - A solve prompt followed by part of a solution (step-level search): it continues the scratchpad.
    - ``pal-arithmetic`` prompts: a program printing the sum (see ``_program``), checking programs and
      revisions.
    - Any other prompt: the value of its last arithmetic expression (``12 + 7*3``), wrong at ``error_rate``;
      "I do not know." when it has none.

    ``distinct_errors``: a wrong answer of sample ``i`` is off by exactly ``+(i + 1)``, so no two wrong
    samples of one prompt agree (tests derive votes, pairs and kept rows from ``right`` alone). ``rules``:
    scripted rules (``ScriptedBackend``'s) tried before the calculator, e.g. a test's rubric judge.

    For fast demos and tests of the machinery, never for claims about models.
    """

    def __init__(self, error_rate: float = 0.3, seed: int = 0, delay: float = 0.0,
                 distinct_errors: bool = False,
                 rules: Sequence[tuple[str, Sequence[Reply] | Callable[[str, int], Reply]]] = ()) -> None:
        if not 0 <= error_rate <= 1:
            raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
        if delay < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {delay}")
        super().__init__(rules=[*rules, (r"", self._answer)], ll=self._verdict_ll)
        self.error_rate, self.seed, self.delay = float(error_rate), int(seed), float(delay)
        self.distinct_errors, self.extra_rules = bool(distinct_errors), len(rules)

    def fingerprint(self) -> str:
        own = f"scripted-calculator-v2-e{self.error_rate}-s{self.seed}"
        own += "-d" if self.distinct_errors else ""
        return own + (f"-{super().fingerprint()}" if self.extra_rules else "")

    def offset(self, prompt: str, i: int) -> int:
        """How far a wrong answer of sample ``i`` is off: ``i + 1`` with ``distinct_errors``, else ±1..9."""
        return i + 1 if self.distinct_errors else self._noise(prompt, i)[1]

    def _noise(self, prompt: str, i: int) -> tuple[float, int]:
        """(uniform in [0, 1), a signed offset in ±1..9), deterministic per seed, prompt and sample."""
        h = int(hashlib.sha256(f"{self.seed}|{prompt}|{i}".encode()).hexdigest(), 16)
        return (h % 10_000) / 10_000, (1 + (h >> 20) % 9) * (1 if (h >> 16) % 2 else -1)

    def right(self, prompt: str, i: int = 0, rate: float | None = None) -> bool:
        """Whether sample ``i`` of ``prompt`` is right (tests derive their expectations from it)."""
        return self._noise(prompt, i)[0] >= (self.error_rate if rate is None else rate)

    def _answer(self, prompt: str, i: int) -> Reply:
        if self.delay:
            time.sleep(self.delay)
        ok = self.right(prompt, i)
        if m := _SOLVE.search(prompt):
            ops, labels, width = _operands(m.group(1))
            total = sum(ops) if ok else max(0, sum(ops) + self.offset(prompt, i))
            return _solution(ops, labels, width, total), -0.2 if ok else -1.5
        if m := _HINT.search(prompt):
            ops, labels, width = _operands(m.group(1))
            return _solution(ops, labels, width, _decode(m.group(2))), -0.2
        if m := _CONTINUE.search(prompt):
            return self._continue(prompt, i, m)
        if m := _REVIEW.search(prompt):
            return self._review(prompt, i, m)
        if m := _PAL.search(prompt):
            return self._program(prompt, i, m.group(1))
        exprs = _EXPR.findall(prompt)
        if not exprs:
            return "I do not know.", -2.0
        value = eval(exprs[-1], {"__builtins__": {}})  # digits and + - * only (the regex guarantees it)
        return f"{value if ok else value + self.offset(prompt, i)}", -0.2 if ok else -1.5

    def _continue(self, prompt: str, i: int, m: re.Match) -> Reply:
        """A partial solution (step-level search): add the operands not yet written, in question order, from
        the last running sum written; each new running sum is off by 1-9 with probability
        ``error_rate / terms`` (deterministic per seed, prompt, sample and step), and an error carries on to
        the answer."""
        ops, labels, width = _operands(m.group(1))
        written = _STEP.findall(m.group(2))
        running = _decode(written[-1][2]) if written else 0
        parts, ok = [], True
        for j, (lab, v) in enumerate(zip(labels, ops)):
            if lab in {w[0] for w in written}:
                continue
            u, off = self._noise(f"{prompt}|{j}", i)
            running = max(0, running + v + (off if u < self.error_rate / len(ops) else 0))
            ok = ok and u >= self.error_rate / len(ops)
            parts.append(f" {lab}{_encode(v, width)}={_encode(running, width)}")
        text = "".join(parts) + f" #{_encode(running, width)}"
        return (text[1:] if prompt.endswith(" ") else text), -0.2 if ok else -1.5

    def _program(self, prompt: str, i: int, expr: str) -> Reply:
        """Program-aided prompts (``pal-arithmetic``): a program, a checking program, or a revised program. A
        wrong solve program either prints a value off by 1-9 or (half the time) fails with a NameError."""
        value = eval(expr, {"__builtins__": {}})  # digits and + only (the regex guarantees it)
        noise = self._noise(prompt, i)[1]
        if "checks whether the proposed answer is correct" in prompt:
            ok = self.right(prompt, i, self.error_rate / 2)
            return f"```python\nassert int(answer) == {value if ok else value + noise}\n```", -0.3
        revision = "Feedback from running it" in prompt or "Result of running the check" in prompt
        ok = self.right(prompt, i, self.error_rate / 2 if revision else None)
        if ok:
            return f"```python\nprint({expr})\n```", -0.2
        if noise < 0 and not revision:
            return f"```python\ntotal = {expr}\nprint(totl)\n```", -1.5
        return f"```python\nprint({expr} + {abs(noise)})\n```", -1.5

    def _review(self, prompt: str, i: int, m: re.Match) -> Reply:
        ops, labels, width = _operands(m.group(1))
        cands = _FINAL.findall(m.group(2))
        cand = _decode(cands[-1]) if cands and "?" not in m.group(2) else None
        fair = self.right(prompt, i, self.error_rate / 2)
        judged_right = (cand == sum(ops)) == fair
        if m.group(3) == "?":
            verdict = "yes" if judged_right else "no"
            if m.group(2).startswith(":"):  # format 1: the verdict at once
                return f" {verdict}", -0.3
            own, shown = (_encode(sum(ops), width),
                          _encode(cand or 0, width) if cand is not None else "?" * width)
            marks = " ".join(f"{a}{b}{'=' if a == b else 'x'}" for a, b in zip(own, shown))
            return f"{_solution(ops, labels, width, sum(ops))} #{shown} ; {marks} | {verdict}", -0.3
        fixed = sum(ops) if fair or cand is None else cand
        if m.group(2).startswith(":"):
            return f" #{_encode(fixed, width)}", -0.3
        return _solution(ops, labels, width, fixed), -0.3

    def _verdict_ll(self, prompt: str, continuation: str) -> float:
        m = _ASKED.search(prompt)
        if m is None or continuation.strip() not in ("yes", "no"):
            return -0.1 * len(continuation)
        ops, labels, _ = _operands(m.group(1))
        cands = _FINAL.findall(m.group(2))
        ok = bool(cands) and "?" not in m.group(2) and _decode(cands[-1]) == sum(ops)
        if not cands and (steps := _STEP.findall(m.group(2))):  # a partial solution: its running sums so far
            sums = [sum(ops[labels.index(lab)] for lab, _, _ in steps[:k + 1]) for k in range(len(steps))]
            ok = all(_decode(w) == t for (_, _, w), t in zip(steps, sums))
        p_yes = 0.8 if ok else 0.3
        return math.log(p_yes if continuation.strip() == "yes" else 1 - p_yes)


def scripted_calculator(error_rate: float = 0.3, seed: int = 0, delay: float = 0.0,
                        distinct_errors: bool = False) -> ScriptedCalculator:
    """The ``scripted`` model (see ``ScriptedCalculator``)."""
    return ScriptedCalculator(error_rate=error_rate, seed=seed, delay=delay, distinct_errors=distinct_errors)


def _operands(text: str) -> tuple[list[int], str, int]:
    tokens = text.split()
    return [_decode(t[1:]) for t in tokens], "".join(t[0] for t in tokens), len(tokens[0]) - 1


def _decode(digits: str) -> int:
    return int(digits[::-1])


def _encode(value: int, width: int) -> str:
    return str(value)[::-1].ljust(width, "0")[:width]


def _solution(ops: Sequence[int], labels: str, width: int, final: int) -> str:
    parts, running = [], 0
    for lab, v in zip(labels, ops):
        running += v
        parts.append(f" {lab}{_encode(v, width)}={_encode(running, width)}")
    return "".join(parts) + f" #{_encode(final, width)}"
