"""Answer extraction, normalisation and equivalence: one layer shared by tasks, voting, verifiers and pair
building, so that a vote and a score can never disagree about whether two answers are the same.

Numbers are normalised to a canonical string: an integer (``"42"``, ``"-3"``) or a reduced fraction
(``"1/2"``), so ``"0.50"``, ``"$0.5"``, ``"1/2"`` and ``\\frac{1}{2}`` are all ``"1/2"``. Percent signs are
dropped (``"50%"`` → ``"50"``), as GSM8K's gold answers write percentages without the sign. LaTeX goes through
math-verify. Anything that cannot be read is ``None``: counted as unparseable, never scored as a number.

Not covered: units ("5 km" reads as 5), scientific notation, symbolic answers that are not rational numbers
(math-verify's sympy value is used only when it is a rational number).
"""

from __future__ import annotations

import re
from fractions import Fraction

_NUM = r"-?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+)?%?|-?\$?\.\d+%?"
_NUM_RE = re.compile(_NUM)
_HASH_RE = re.compile(r"####\s*(" + _NUM + ")")
_ANSWER_IS_RE = re.compile(r"answer\s*(?:is|:)?\s*:?\s*\**\s*(" + _NUM + ")", re.IGNORECASE)
_A_COLON_RE = re.compile(r"(?:^|\n)\s*A:\s*(" + _NUM + r")\s*\.?\s*$")


def normalize_number(text: str | None) -> str | None:
    """Canonical string for a number written as text, or None when ``text`` is not one number."""
    if text is None:
        return None
    s = text.strip().rstrip(".").strip()
    if "\\" in s or "{" in s:
        return _latex_number(s)
    s = s.replace(",", "").replace("$", "").replace("%", "").replace(" ", "")
    s = s.removeprefix("+")
    try:
        value = Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None
    return format_fraction(value)


def format_fraction(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _latex_number(s: str) -> str | None:
    from math_verify import parse  # lazy: pulls in sympy

    if not s.startswith("$"):
        s = f"${s}$"
    for value in parse(s):
        if getattr(value, "is_Rational", False):
            return format_fraction(Fraction(int(value.p), int(value.q)))
    return None


def _boxed(text: str) -> str | None:
    """Contents of the last ``\\boxed{...}``, braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


def extract_number(text: str | None) -> str | None:
    """The final numeric answer of a free-text solution, normalised; None when there is none.

    Order: ``#### n`` (GSM8K), ``\\boxed{n}``, "the answer is n", a final ``A: n`` line, then the last
    number in the text.
    """
    if not text:
        return None
    if m := _HASH_RE.findall(text):
        return normalize_number(m[-1])
    if (boxed := _boxed(text)) is not None:
        return normalize_number(boxed)
    if m := _ANSWER_IS_RE.findall(text):
        return normalize_number(m[-1])
    if m := _A_COLON_RE.search(text):
        return normalize_number(m.group(1))
    if m := _NUM_RE.findall(text):
        return normalize_number(m[-1])
    return None


LETTERS = "ABCDEFGHIJ"
_LETTER_PATTERNS = [
    re.compile(r"answer\s*(?:is|:)\s*:?\s*\(?([A-J])\b\)?", re.IGNORECASE),
    re.compile(r"^\s*\(?([A-J])\)?\s*(?:[.:)]|$)"),
    re.compile(r"\(([A-J])\)"),
]


def extract_letter(text: str | None, n_choices: int = 5) -> str | None:
    """A choice letter (``"A"``…) from a multiple-choice answer, or None."""
    if not text:
        return None
    valid = LETTERS[:n_choices]
    for pattern in _LETTER_PATTERNS:
        found = [x.upper() for x in pattern.findall(text.strip())]
        found = [x for x in found if x in valid]
        if found:
            return found[-1] if pattern is not _LETTER_PATTERNS[1] else found[0]
    return None


_YES = {"yes", "true", "correct", "y"}
_NO = {"no", "false", "incorrect", "n"}


def extract_yes_no(text: str | None) -> str | None:
    """``"yes"`` / ``"no"`` from the first word of an answer (yes/true/correct, no/false/incorrect)."""
    if not text:
        return None
    m = re.search(r"(?:answer\s*(?:is|:)\s*)?\b([A-Za-z]+)\b", text.strip())
    if m is None:
        return None
    word = m.group(1).lower()
    if word in ("answer",):
        rest = text.strip()[m.end():]
        return extract_yes_no(rest)
    if word in _YES:
        return "yes"
    if word in _NO:
        return "no"
    return None


def group_answers(answers, equivalent=None) -> list[list[int]]:
    """Indices of equal answers, one group per distinct answer, in order of first appearance; None (unparseable)
    is in no group. ``equivalent(a, b)`` compares an answer with each group's first; by default answers are
    compared as strings (they are already normalised). Every vote (majority, weighted, posterior, ScPO's pairs)
    groups through this function, so they agree with each other and with scoring."""
    eq = equivalent or str.__eq__
    groups: list[list[int]] = []
    for i, a in enumerate(answers):
        if a is None:
            continue
        for g in groups:
            if eq(answers[g[0]], a):
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def majority(answers, equivalent=None) -> tuple[str | None, int, int]:
    """Most common non-None answer; ties go to the answer that appeared first (deterministic).

    Returns (answer, its votes, number of parseable votes); answers are grouped by ``group_answers``.
    """
    answers = list(answers)
    groups = group_answers(answers, equivalent)
    if not groups:
        return None, 0, 0
    best = max(groups, key=len)  # max keeps the first of equal counts
    return answers[best[0]], len(best), sum(len(g) for g in groups)
