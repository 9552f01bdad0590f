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
_HASH_RE = re.compile(r"####\s*([^\n]*)")
_ANSWER_IS_RE = re.compile(r"answer\s*(?:is|:|=)\s*:?", re.IGNORECASE)
_A_COLON_RE = re.compile(r"(?:^|\n)\s*A:\s*(" + _NUM + r")\s*\.?\s*$")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TIMES = re.compile(r"(?<=[\d)])\s*[x×]\s*(?=[\d($])")
_EXPR_RUN = re.compile(r"[-+*/÷()=$%.\d\s]*\d[-+*/÷()=$%.\d\s]*")
_LEADING_ZEROS = re.compile(r"(?<![\d.])0+(?=\d)")
_SENTENCE_END = re.compile(r"\.(?!\d)|[;!?]|\n")


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


def extract_number(text: str | None, fractions: bool = True) -> str | None:
    """The final numeric answer of a free-text solution, normalised; None when there is none.

    Order: ``#### n`` (GSM8K), ``\\boxed{n}``, the last "the answer is …" / "answer: …", a final ``A: n``
    line, then the last number in the text. What follows a marker is read as an arithmetic expression
    (``evaluate_expression``): a chain ``200 / 2 = 100 / 2 = 50`` gives the value after its last ``=`` (50),
    an expression without ``=`` is evaluated (``3 + 4`` → 7), and an expression that cannot be evaluated is
    None — never a fraction read out of the middle of a calculation. With ``fractions=False`` (tasks whose
    answers are never fractions, such as GSM8K) a value written as an unevaluated division that is not a
    whole number (``16/36``) is None: the model stopped before the answer.
    """
    if not text:
        return None
    if m := _HASH_RE.findall(text):
        return _first_expression(m[-1], fractions)
    if (boxed := _boxed(text)) is not None:
        return normalize_number(boxed)
    if found := list(_ANSWER_IS_RE.finditer(text)):
        return _first_expression(text[found[-1].end():], fractions)
    if m := _A_COLON_RE.search(text):
        return _first_expression(m.group(1), fractions)
    runs = _expression_runs(text)
    return _value(runs[-1], fractions) if runs else None


def evaluate_expression(expr: str) -> Fraction | None:
    """The exact value of an arithmetic expression of numbers, ``+ - * /``, unary minus and parentheses
    (``$``, ``%``, thousands separators, ``x`` / ``×`` / ``÷`` accepted); None for anything else, a division
    by zero or a malformed expression. Evaluated over the syntax tree, never by ``eval``."""
    import ast

    s = _TIMES.sub("*", _THOUSANDS.sub("", expr)).replace("÷", "/").replace("$", "").replace("%", "").strip()
    s = _LEADING_ZEROS.sub("", s)
    if not s or len(s) > 200:
        return None
    try:
        tree = ast.parse(s, mode="eval")
    except SyntaxError:
        return None
    ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b}

    def ev(node) -> Fraction:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return Fraction(ast.get_source_segment(s, node) or str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError(type(node).__name__)

    try:
        return ev(tree.body)
    except (ValueError, ZeroDivisionError):
        return None


def _expression_runs(text: str) -> list[str]:
    """Maximal stretches of ``text`` made only of numbers, operators, ``=``, ``$``, ``%`` and parentheses."""
    s = _TIMES.sub(" * ", _THOUSANDS.sub("", text.replace("**", " ")))
    return [r for r in _EXPR_RUN.findall(s) if any(ch.isdigit() for ch in r)]


def _first_expression(span: str, fractions: bool) -> str | None:
    """The value of the first expression in the sentence that follows an answer marker."""
    span = span.strip()
    cut = _SENTENCE_END.search(span)
    runs = _expression_runs(span[:cut.start()] if cut else span)
    return _value(runs[0], fractions) if runs else None


def _value(run: str, fractions: bool) -> str | None:
    """Normalised value of one expression run: after its last ``=``, evaluated; None when it cannot be."""
    last = [part for part in run.split("=") if any(ch.isdigit() for ch in part)]
    if not last:
        return None
    expr = last[-1].strip().strip("+*/").rstrip("-").strip()
    expr = expr.rstrip(".").strip()
    if expr.count("(") != expr.count(")"):
        expr = expr.strip("()").strip()
    value = evaluate_expression(expr)
    if value is None:
        return None
    if not fractions and "/" in expr.replace("÷", "/") and value.denominator != 1:
        return None  # an unevaluated division such as 16/36: not a final answer in a whole-number task
    return format_fraction(value)


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
    """``"yes"`` / ``"no"``: the first word after the last "the answer is" / "answer:" when there is one,
    else the first word of the text (yes/true/correct, no/false/incorrect); anything else is None."""
    if not text:
        return None
    if found := list(_ANSWER_IS_RE.finditer(text)):
        word = _yes_no_word(text[found[-1].end():])
        if word is not None:
            return word
    return _yes_no_word(text)


def _yes_no_word(text: str) -> str | None:
    m = re.search(r"[A-Za-z]+", text)
    word = m.group().lower() if m else ""
    return "yes" if word in _YES else "no" if word in _NO else None


_TEXT_EDGES = " \t\"'`*.,;:!?()[]{}"


def normalize_text(text: str | None) -> str | None:
    """A short text answer compared exactly: lower-cased, inner whitespace collapsed, quotes, markdown and
    punctuation stripped from both ends; None when nothing is left."""
    if text is None:
        return None
    s = " ".join(text.split()).lower().strip(_TEXT_EDGES)
    return s or None


def extract_text(text: str | None) -> str | None:
    """A short free-text answer: the rest of the line after the last "the answer is" / "answer:"; without a
    marker, a bare answer — an output that is one line of at most ``BARE_WORDS`` words (``"Paris"``) — and
    otherwise None: a sentence or a chain of thought without a marked answer has no answer to compare (the
    first line of a chain of thought is its first step). Normalised by ``normalize_text``."""
    if not text or not text.strip():
        return None
    if found := list(_ANSWER_IS_RE.finditer(text)):
        return normalize_text(text[found[-1].end():].strip().split("\n", 1)[0])
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and len(lines[0].split()) <= BARE_WORDS:
        return normalize_text(lines[0])
    return None


BARE_WORDS = 5
"""Longest output (in words) read as a bare text answer when it has no "the answer is" marker."""


def group_answers(answers, equivalent=None) -> list[list[int]]:
    """Indices of equal answers, one group per distinct answer, in order of first appearance; None
    (unparseable) is in no group. ``equivalent(a, b)`` compares an answer with each group's first; by default
    answers are compared as strings (they are already normalised). Every vote (majority, weighted, posterior,
    ScPO's pairs) groups through this function, so they agree with each other and with scoring."""
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
