"""A self-contained HTML report of one eval run: the comparison table, accuracy versus tokens, reliability
diagrams, correction transitions, the generation–verification gap of self-verified selection, per-strategy
cost and paired tests against the first strategy.

It is the viewer's eval page without the server: the same rows (``sections``), figures (``plots``) and
template (``templates/eval_run.html``), with the figures embedded as base64 PNGs so the file can be mailed or
archived alone. Strategies that read the gold answer (``trace.info['oracle']``) are labelled "oracle"
everywhere they appear. Unparseable answers count as wrong in accuracy and paired tests, as in the table of
``selfimprove eval``; failed requests are counted under errors and left out of the analyses.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..metrics.analysis import analysis
from . import plots as P
from . import sections as S
from .plots import majority_curve
from .render import render

__all__ = ["eval_report_html", "majority_curve", "write_report"]


def eval_report_html(run: Mapping[str, Any], scopes: Mapping[str, Sequence[Any]],
                     metrics: Mapping[str, Mapping[str, Any]], seed: int = 0) -> str:
    """The report page of one eval run: ``scopes`` maps each strategy to its traces, ``metrics`` to its
    stored metrics row."""
    analyses = {s: analysis(ts) for s, ts in scopes.items()}
    labels = {s: S.label(s, a["oracle"]) for s, a in analyses.items()}
    calibration, correction = S.calibration_table(analyses, labels), S.correction_table(analyses, labels)
    figures = {"accuracy-tokens": P.accuracy_vs_tokens(metrics, labels), "cost": P.cost(metrics, labels),
               "calibration": P.reliability(calibration["data"], labels),
               "correction": P.transitions(correction["data"], labels)}
    plots = {k: f"data:image/png;base64,{base64.b64encode(v).decode()}" for k, v in figures.items() if v}
    return render("eval_run.html", static=True, run=run, n_examples=len(next(iter(scopes.values()), [])),
                  strategy=S.strategy_table(metrics, labels), calibration=calibration, correction=correction,
                  gap=S.gap_table(metrics, labels), paired=S.paired_against_first(scopes, labels, seed=seed),
                  plots=plots, links=None)


def write_report(path: str | Path, store, run_id: str) -> Path:
    run = store.get_run(run_id)
    metrics = store.metrics(run_id)
    # failed requests are no answers: the analyses read the answered traces; the table counts the rest
    scopes = {s: [t for t in store.traces(run_id, s) if t.status == "ok"] for s in metrics
              if store.done_ids(run_id, s)}
    path = Path(path)
    path.write_text(eval_report_html(run, scopes, {s: metrics[s] for s in scopes}), encoding="utf-8")
    return path
