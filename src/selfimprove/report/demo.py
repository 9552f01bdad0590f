"""The demo's HTML page, rendered with the report's templates and figures (the viewer's training page draws
the same figure): accuracy per round for every arm and split with 95 % CIs, the per-round table, the paired
tests and the inference comparison. Self-contained (figures embedded as base64 PNGs)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import plots as P
from . import sections as S
from .render import render


def demo_page_html(title: str, rounds: Mapping[str, Sequence[Mapping[str, Any]]], splits: Sequence[str],
                   tests: Mapping[str, Mapping[str, Any]], inference: Mapping[str, Mapping[str, Any]] | None = None
                   ) -> str:
    """``rounds``: each arm's round metrics (``training.round_metrics``); ``tests``: label → the demo's paired
    test result (``mcnemar``, ``bootstrap``, ``verdict``); ``inference``: strategy → its metrics row."""
    figure = P.arms_by_split(rounds, splits)
    labels = {s: s for s in inference or {}}
    return render("demo.html", static=True, title=title, rounds=rounds, splits=list(splits), tests=tests,
                  inference=S.strategy_table(inference, labels) if inference else None,
                  figure=f"data:image/png;base64,{base64.b64encode(figure).decode()}" if figure else None)


def write_demo_page(path: str | Path, out: Path, summaries: Mapping[str, Any], splits: Sequence[str],
                    tests: Mapping[str, Mapping[str, Any]], *, title: str,
                    inference: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """The demo page for the arms under run directory ``out``, written to ``path``."""
    from ..training import round_metrics

    rounds = {arm: list(round_metrics(Path(out) / arm)) for arm in summaries}
    path = Path(path)
    path.write_text(demo_page_html(title, rounds, splits, tests, inference), encoding="utf-8")
    return path
