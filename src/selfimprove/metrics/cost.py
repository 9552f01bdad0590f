"""Cost accounting: what did each point of accuracy cost in model calls and tokens?

The efficiency side of adaptive sampling — ESC's "average number of sampling" (arXiv:2401.10480), DSC's cost
at comparable accuracy (arXiv:2408.13457), Soft-SC's samples (arXiv:2402.13212), token efficiency
(arXiv:2508.03979) — made comparable across strategies by counting what every ``Trace`` records:
``prompt_tokens``, ``completion_tokens`` and ``calls``.

- ``cost_by_strategy(traces)``: per strategy, totals and per-example means of calls, prompt, completion and
  all tokens; accuracy over decided traces (``correct`` None counted in ``n_undecided``, not in the
  denominator); failed traces (``status != 'ok'``) counted in ``n_error`` — their tokens were spent, so they
  stay in the token totals; and ``accuracy_per_1k_tokens`` = accuracy / (mean tokens per example / 1000).
- ``accuracy_vs_tokens(runs)``: one point per budget of one strategy (e.g. SC with n = 1, 4, 16), sorted by
  mean tokens per example: the curve on which strategies are compared at equal cost.

Not covered: wall-clock time, money (price per token differs by provider), cached-prefix discounts (a prefill
shared across n samples is counted as each backend reports it), and interpolating accuracy at a given budget.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Any


def cost_summary(traces: Iterable[Any]) -> dict[str, Any]:
    """Calls, tokens and accuracy over traces taken as one group (see the module docstring for the keys)."""
    traces = list(traces)
    n = len(traces)
    decided = [t.correct for t in traces if t.correct is not None]
    accuracy = sum(decided) / len(decided) if decided else None
    out: dict[str, Any] = {"n": n, "n_error": sum(t.status != "ok" for t in traces),
                           "n_undecided": n - len(decided), "accuracy": accuracy}
    for key, values in (("calls", [t.calls for t in traces]),
                        ("prompt_tokens", [t.prompt_tokens for t in traces]),
                        ("completion_tokens", [t.completion_tokens for t in traces]),
                        ("tokens", [t.prompt_tokens + t.completion_tokens for t in traces])):
        out[f"{key}_total"] = sum(values)
        out[f"{key}_mean"] = sum(values) / n if n else None
    tokens_mean = out["tokens_mean"]
    out["accuracy_per_1k_tokens"] = (accuracy / (tokens_mean / 1000.0)
                                     if accuracy is not None and tokens_mean else None)
    return out


def cost_by_strategy(traces: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """``cost_summary`` per ``Trace.strategy``, in first-seen order."""
    groups: dict[str, list[Any]] = {}
    for t in traces:
        groups.setdefault(t.strategy, []).append(t)
    return {name: cost_summary(group) for name, group in groups.items()}


def accuracy_vs_tokens(runs: Mapping[Hashable, Iterable[Any]]) -> list[dict[str, Any]]:
    """Accuracy-versus-tokens points, one per budget: ``{budget: traces}`` → list sorted by ``tokens_mean``.

    Each point is ``cost_summary`` of that budget's traces plus ``budget`` (the mapping's key, e.g. n = 16).
    Points without traces keep ``tokens_mean`` None and sort last.
    """
    points = [{"budget": budget, **cost_summary(traces)} for budget, traces in runs.items()]
    return sorted(points, key=lambda p: math.inf if p["tokens_mean"] is None else p["tokens_mean"])
