"""The one rendering path for HTML: a Jinja2 environment over ``report/templates`` with autoescaping on.

Every model text (prompts, completions, answers, judge texts) reaches a page only through a template variable,
and autoescaping turns ``<script>`` into text; nothing is marked safe except the markup the templates write.
Used by ``eval --report`` (static, figures embedded), the demo's page and the viewer (``selfimprove view``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).with_name("templates")


def environment():
    """A Jinja2 environment over the report templates, with the filters they use."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                      lstrip_blocks=True,
                      undefined=StrictUndefined)
    env.filters.update(pct=_pct, num=_num, pretty=_pretty, tokens=token_spans, mark=_mark)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def token_spans(completion: Any) -> list[dict[str, Any]]:
    """The completion's text split into its tokens, each with its log-probability and a background colour
    (white for p = 1, deepening red as p falls). Token texts come from ``Completion.tokens`` where the backend
    recorded them and they add up to the text; a character-level model's tokens are its characters (one
    log-probability per character); otherwise the text is one piece titled with the mean log-probability."""
    text, lps = completion.text, completion.token_logprobs
    pieces = getattr(completion, "tokens", None)
    if lps and pieces and len(pieces) == len(lps) and "".join(pieces) == text:
        return [_span(p, lp) for p, lp in zip(pieces, lps)]
    if lps and len(lps) == len(text):
        return [_span(ch, lp) for ch, lp in zip(text, lps)]
    mean = sum(lps) / len(lps) if lps else None
    if not lps:
        return [{"text": text, "style": "", "title": "no log-probabilities recorded"}] if text else []
    return [{**_span(text, mean), "title": "token boundaries not recorded; " + _span(text, mean)["title"]
             .replace("logprob", "mean logprob")}] if text else []


def _span(text: str, lp: float | None) -> dict[str, Any]:
    if lp is None:
        return {"text": text, "style": "", "title": "no log-probability"}
    p = math.exp(min(lp, 0.0))
    alpha = round(0.85 * (1 - p), 3)
    return {"text": text, "style": f"background: rgba(214, 39, 40, {alpha})",
            "title": f"logprob {lp:.3f} · p {p:.3f}"}


def _mark(correct: Any) -> str:
    return {True: "✓", False: "✗"}.get(correct, "?")


def _pct(x: Any) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    return str(x) if isinstance(x, int) else f"{x:.{digits}f}"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str, ensure_ascii=False)
