"""The numbers of an eval run's report, as plain rows: one copy for ``eval --report``, the demo page and the
viewer (``selfimprove view``), which render them with the same templates (``report/templates``).

The tables read stored metrics rows and their ``analysis`` (``metrics.analysis``); paired tests read traces'
scalar fields only (correctness, status), so the viewer can pass step-less traces read from the store's index.
Strategies that read the gold answer (``trace.info['oracle']``) are labelled "oracle" everywhere. Unparseable
answers count as wrong in accuracy, correction cells and paired tests, as in the table of
``selfimprove eval``; a failed request (status not 'ok') is no answer: it is counted under errors and left out
of the paired tests, never scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..metrics.accuracy import failure_cells
from ..metrics.stats import mcnemar_exact, outcome, paired_bootstrap


def pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def num(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def label(scope: str, oracle: bool) -> str:
    return f"{scope} (oracle)" if oracle and "oracle" not in scope else scope


def strategy_table(metrics: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str]) -> dict[str, Any]:
    """The comparison table: one row per strategy. Failure counts as ``failure_cells`` writes them ('—' where
    a count does not apply or an older run did not record it); the pass@k column only when a strategy kept a
    pool."""
    rows = list(metrics.items())
    pools = any("n_samples" in m for _, m in rows)
    head = ["strategy", "accuracy %", "95% CI", "unparsed", "errors", "truncated", "unscored",
            "tokens/example",
            "calls", "wall s"] + ["pass@k · maj@k"] * pools
    out = []
    for scope, m in rows:
        ci = m.get("ci95")
        cells = [labels.get(scope, scope), pct(m.get("accuracy")),
                 f"{pct(ci[0])}–{pct(ci[1])}" if ci else "—",
                 *failure_cells({"n": 0, "unparsed": 0, **m}, errors=True),
                 num(m.get("tokens_per_example"), 0),
                 m.get("calls", "—"), num(m.get("wall_s"), 1)]
        if pools:
            k = m.get("n_samples")
            cells.append(f"pass@{k} {pct(m.get(f'pass@{k}'))} · maj@{k} {pct(m.get(f'maj@{k}'))}" if k
                         else "—")
        out.append({"scope": scope, "cells": cells})
    return {"head": head, "rows": out}


def calibration_table(analyses: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str]) -> dict[str, Any]:
    """ECE, Brier and AUROC of each strategy with a confidence (``metrics.analysis``: answered traces only, an
    unparseable answer wrong, as in accuracy)."""
    calib = {s: a["calibration"] for s, a in analyses.items() if a.get("calibration")}
    rows = [{"scope": s, "cells": [labels[s], c["n"], c["n_missing"], num(c["ece"]), num(c["brier"]),
                                   num(c["auroc"])]} for s, c in calib.items()]
    return {"head": ["strategy", "n", "missing", "ECE", "Brier", "AUROC"], "rows": rows, "data": calib}


def correction_table(analyses: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str]) -> dict[str, Any]:
    """First versus final answer of each strategy that ever changed its answer: accuracies, CL/CS/RSS and
    the four transition cells (the viewer links each cell to its examples)."""
    corr = {s: a["correction"] for s, a in analyses.items() if a.get("correction")}
    rows = [{"scope": s, "label": labels[s], "transitions": c["transitions"],
             "cells": [pct(c["acc1"]), pct(c["acc2"]), pct(c["delta"]), num(c["cl"]), num(c["cs"]),
                       num(c["rss"])],
             "unparsed": f"{c['unparsed_initial']}/{c['unparsed_final']}"} for s, c in corr.items()]
    return {"head": ["strategy", "Acc₁ %", "Acc₂ %", "Δ", "CL", "CS", "RSS", "c→c", "c→w", "w→c", "w→w",
                     "unparsed before/after"], "rows": rows, "data": corr}


def gap_table(metrics: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str]) -> dict[str, Any]:
    """The generation–verification gap of strategies that ranked their pool with a self-verifier."""
    gaps = {s: m["verification"] for s, m in metrics.items() if m.get("verification")}
    rows = [{"scope": s, "cells": [labels.get(s, s), pct(g["mean_sample_accuracy"]),
                                   pct(g["selected_accuracy"]),
                                   pct(g["gap"]), num(g["relative_gap"]), g["n_questions"],
                                   num(g["sample_calibration"]["ece"]), num(g["sample_calibration"]["auroc"]),
                                   g["n_unscored"]]} for s, g in gaps.items()]
    return {"head": ["strategy", "mean sample acc %", "self-selected acc %", "gap (points)", "relative gap",
                     "questions", "score ECE", "score AUROC", "unscored samples"], "rows": rows}


def outcomes(traces: Sequence[Any]) -> dict[str, bool | None]:
    """``{example_id: correct}`` for a paired test, by ``metrics.stats.outcome``: unparseable or undecided
    is wrong (as in accuracy), a failed request is None (no answer: left out of the pair and counted)."""
    return {t.example_id: outcome(t) for t in traces}


def paired(a: Sequence[Any], b: Sequence[Any], seed: int = 0) -> dict[str, Any] | None:
    """Exact McNemar and the paired bootstrap CI of B − A over the examples both strategies ran; None when
    they share no example. ``left_out`` counts the examples only one of them holds."""
    oa, ob = outcomes(a), outcomes(b)
    shared = [k for k in oa if k in ob]
    if not shared:
        return None
    oa, ob = {k: oa[k] for k in shared}, {k: ob[k] for k in shared}
    mc, bs = mcnemar_exact(oa, ob), paired_bootstrap(oa, ob, seed=seed)
    return {"mcnemar": mc, "bootstrap": bs,
            "left_out": len(outcomes(a)) + len(outcomes(b)) - 2 * len(shared),
            "cells": [pct(mc["diff"]), f"{pct(bs['ci_low'])} … {pct(bs['ci_high'])}",
                      f"{mc['b_only']}/{mc['a_only']}", f"{mc['p_value']:.4f}", mc["n_undecided"]]}


PAIRED_HEAD = ["strategy", "Δ accuracy (points)", "paired bootstrap 95% CI", "only this / only base right",
               "exact McNemar p", "pairs left out (failed requests)"]


def paired_against_first(scopes: Mapping[str, Sequence[Any]], labels: Mapping[str, str],
                         seed: int = 0) -> dict[str, Any] | None:
    """Every strategy against the first one, as the static report shows it."""
    if len(scopes) < 2:
        return None
    base, *others = scopes
    rows = []
    for s in others:
        result = paired(scopes[base], scopes[s], seed=seed)
        if result:
            rows.append({"scope": s, "cells": [labels[s], *result["cells"]]})
    return {"base": labels[base], "head": PAIRED_HEAD, "rows": rows}
