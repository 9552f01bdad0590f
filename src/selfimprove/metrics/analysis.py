"""The per-strategy analyses stored beside a strategy's metrics row: calibration of its confidence and what a
second look fixed and broke (first versus final answer).

``analysis(traces)`` is computed once when a run's metrics are written (``runner.strategy_metrics``), so the
report and the viewer read a few numbers instead of every trace; for a run stored before it existed they call
it on the traces. Only answered traces count (a failed request is no answer); an unparseable answer counts as
wrong, as in accuracy. Calibration: Guo et al., "On Calibration of Modern Neural Networks" (arXiv:1706.04599);
correction cells and CL / CS / RSS: see ``metrics.correction``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .calibration import calibration_from_traces
from .correction import correction_from_traces

CALIBRATION_KEYS = ("n", "n_missing", "ece", "brier", "auroc", "reliability")
CORRECTION_KEYS = ("n", "acc1", "acc2", "delta", "cl", "cs", "rss", "transitions", "unparsed_initial",
                   "unparsed_final")


def analysis(traces: Sequence[Any]) -> dict[str, Any]:
    """``{'oracle', 'calibration', 'correction'}`` of one strategy's traces: ``oracle`` when a trace read the
    gold answer; ``calibration`` when some answered trace has a confidence, else None; ``correction`` when
    some answered trace changed its answer, else None."""
    answered = [t for t in traces if t.status == "ok"]
    out: dict[str, Any] = {"oracle": any(t.info.get("oracle") for t in traces), "calibration": None,
                           "correction": None}
    if any(t.confidence is not None for t in answered):
        c = calibration_from_traces(answered, unparsed_as_wrong=True)
        out["calibration"] = {k: c[k] for k in CALIBRATION_KEYS}
    if any(t.initial_answer != t.final_answer for t in answered):
        c = correction_from_traces(answered, unparsed_as_wrong=True)
        out["correction"] = {k: c[k] for k in CORRECTION_KEYS}
    return out
