"""The report's figures as PNG bytes: one copy, drawn for ``eval --report`` (embedded as base64), the demo
page and the viewer (served as images).

Figures are built with matplotlib's object API (``matplotlib.figure.Figure``), never ``pyplot``: no global
figure state, so the viewer's worker threads can draw at the same time.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

EVAL_PLOTS = ("accuracy-tokens", "cost", "calibration", "correction")
"""The figures of an eval run, by name (the viewer's plot URLs accept only these)."""

TRANSITION_COLOURS = (("cc", "#4c9a2a", "c→c"), ("wc", "#9ad27a", "w→c (fixed)"),
                      ("cw", "#e07b5a", "c→w (broken)"), ("ww", "#b0b0b0", "w→w"))


def majority_curve(m: Mapping[str, Any]) -> list[tuple[float, float]]:
    """(tokens per example, maj@k) for every k the strategy's pool metrics hold (a pool of K samples), with
    the tokens of k samples estimated as the prompt tokens plus k/K of the completion tokens. Only for a
    strategy whose pool is all it spent — one call per example, nothing verified (self-consistency, sample);
    an adaptive or verifying strategy's tokens do not divide that way, and it gets no curve."""
    ks = sorted(int(key[4:]) for key in m if key.startswith("maj@") and m[key] is not None)
    if not ks or not m.get("n") or m.get("calls") != m["n"] or "verification" in m:
        return []
    prompt, completion, top = m["prompt_tokens"] / m["n"], m["completion_tokens"] / m["n"], ks[-1]
    return [(prompt + completion * k / top, m[f"maj@{k}"]) for k in ks]


def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    return fig, fig.add_subplot()


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def budget_curves(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """(tokens per example, accuracy) of every strategy family (the spec's name before ':') run at two or
    more settings, sorted by tokens: the accuracy-versus-tokens curve of beam, MCTS, best-of-n, ... across
    budgets."""
    families: dict[str, list[tuple[float, float]]] = {}
    for s, m in rows.items():
        families.setdefault(s.split(":")[0], []).append((m["tokens_per_example"], m["accuracy"]))
    return {f: sorted(v) for f, v in families.items() if len(v) > 1}


def accuracy_vs_tokens(metrics: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str]) -> bytes | None:
    """Accuracy (95 % CI) against tokens per example, log scale, with self-consistency's majority-of-k
    curve."""
    rows = {s: m for s, m in metrics.items() if m.get("accuracy") is not None and m.get("tokens_per_example")}
    if not rows:
        return None
    fig, ax = _figure(6.5, 4)
    for s, m in rows.items():
        ci = m.get("ci95") or (m["accuracy"], m["accuracy"])
        ax.errorbar(m["tokens_per_example"], 100 * m["accuracy"], fmt="o",
                    yerr=[[100 * (m["accuracy"] - ci[0])], [100 * (ci[1] - m["accuracy"])]], capsize=3)
        ax.annotate(labels.get(s, s), (m["tokens_per_example"], 100 * m["accuracy"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
        curve = majority_curve(m)
        if len(curve) > 1:  # the vote over the first k samples of the same pool, k = 1, 2, 4, ...
            ax.plot([x for x, _ in curve], [100 * y for _, y in curve], ":", lw=1, color="grey",
                    label=f"{labels.get(s, s)}: majority of its first k samples")
    for family, points in budget_curves(rows).items():  # one strategy run at several budgets: its curve
        ax.plot([x for x, _ in points], [100 * y for _, y in points], "-", lw=1, alpha=0.6,
                label=f"{family} at {len(points)} budgets")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xscale("log")
    ax.set(xlabel="tokens per example (prompt + completion, log scale)", ylabel="accuracy % (95% CI)",
           title="Accuracy versus tokens spent")
    return png(fig)


def cost(metrics: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str]) -> bytes | None:
    """Prompt and completion tokens of the whole run, per strategy."""
    names = [s for s, m in metrics.items() if "prompt_tokens" in m]
    if not names:
        return None
    fig, ax = _figure(6.5, 0.8 + 0.45 * len(names))
    ys = [labels.get(s, s) for s in names]
    ax.barh(ys, [metrics[s]["prompt_tokens"] for s in names], label="prompt")
    ax.barh(ys, [metrics[s]["completion_tokens"] for s in names],
            left=[metrics[s]["prompt_tokens"] for s in names], label="completion")
    ax.set(xlabel="tokens (whole run)", title="Cost per strategy")
    ax.legend(fontsize=7)
    return png(fig)


def reliability(calib: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str]) -> bytes | None:
    """Reliability diagram: accuracy per confidence bin against the diagonal."""
    if not calib:
        return None
    fig, ax = _figure(5, 5)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    for s, c in calib.items():
        pts = [(b["mean_confidence"], b["accuracy"]) for b in c["reliability"] if b["count"]]
        if pts:
            ax.plot(*zip(*pts), "o-", label=labels.get(s, s), ms=4)
    ax.set(xlabel="confidence", ylabel="accuracy", title="Reliability diagram", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7)
    return png(fig)


def transitions(corr: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str]) -> bytes | None:
    """Stacked bars of c→c, w→c, c→w and w→w per strategy."""
    if not corr:
        return None
    fig, ax = _figure(6.5, 0.8 + 0.45 * len(corr))
    left = [0] * len(corr)
    for key, colour, name in TRANSITION_COLOURS:
        vals = [c["transitions"][key] for c in corr.values()]
        ax.barh([labels.get(s, s) for s in corr], vals, left=left, color=colour, label=name)
        left = [a + b for a, b in zip(left, vals)]
    ax.set(xlabel="examples", title="What a second look fixed and broke")
    ax.legend(fontsize=7)
    return png(fig)


def rounds_accuracy(rounds: Sequence[Mapping[str, Any]], title: str = "") -> bytes | None:
    """Accuracy per evaluated split over training rounds, with 95 % CIs."""
    splits = sorted({s for m in rounds for s in m.get("eval", {})})
    if not splits:
        return None
    fig, ax = _figure(6.5, 4)
    for i, split in enumerate(splits):
        pts = [(m["round"] + 0.04 * (i - len(splits) / 2), m["eval"][split]) for m in rounds
               if m.get("eval", {}).get(split, {}).get("accuracy") is not None]
        if not pts:
            continue
        xs, accs = [x for x, _ in pts], [100 * a["accuracy"] for _, a in pts]
        cis = [a.get("ci95") or (a["accuracy"], a["accuracy"]) for _, a in pts]
        ax.errorbar(xs, accs, yerr=[[a - 100 * c[0] for a, c in zip(accs, cis)],
                                    [100 * c[1] - a for a, c in zip(accs, cis)]], fmt="o-", capsize=3,
                    label=split)
    ax.set(xlabel="round (0 = starting model)", ylabel="greedy accuracy % (95% CI)",
           title=title or "Accuracy per round", ylim=(-2, 102))
    ax.set_xticks(sorted({m["round"] for m in rounds}))
    ax.legend(fontsize=7)
    return png(fig)


def series(values: Mapping[str, Sequence[tuple[int, float]]], title: str, ylabel: str) -> bytes | None:
    """One line per named series of (round, value) points (guards, kept rows, losses over rounds)."""
    values = {k: v for k, v in values.items() if v}
    if not values:
        return None
    fig, ax = _figure(6.5, 3.5)
    for name, pts in values.items():
        ax.plot([r for r, _ in pts], [v for _, v in pts], "o-", ms=4, label=name)
    ax.set(xlabel="round", ylabel=ylabel, title=title)
    ax.set_xticks(sorted({r for pts in values.values() for r, _ in pts}))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))  # beside the axes: never over a line
    return png(fig)


def arms_by_split(rounds: Mapping[str, Sequence[Mapping[str, Any]]], splits: Sequence[str]) -> bytes | None:
    """One panel per evaluated split, one line per arm: greedy accuracy (95 % CI) over rounds (the viewer's
    figure for a run of several arms, such as the demo's)."""
    splits = [s for s in splits if any(m.get("eval", {}).get(s) for ms in rounds.values() for m in ms)]
    if not splits:
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(splits), 3.4))
    axes = fig.subplots(1, len(splits), squeeze=False)[0]
    for ax, split in zip(axes, splits):
        for arm, ms in rounds.items():
            pts = [(m["round"], m["eval"][split]) for m in ms
                   if (m.get("eval", {}).get(split) or {}).get("accuracy") is not None]
            ys = [100 * a["accuracy"] for _, a in pts]
            cis = [a.get("ci95") or (a["accuracy"], a["accuracy"]) for _, a in pts]
            ax.errorbar([r for r, _ in pts], ys, yerr=[[y - 100 * c[0] for y, c in zip(ys, cis)],
                                                       [100 * c[1] - y for y, c in zip(ys, cis)]],
                        marker="o", capsize=3, label=arm or "run")
        ax.set(title=split, xlabel="round", ylim=(-2, 102))
        ax.set_xticks(sorted({m["round"] for ms in rounds.values() for m in ms}))
    axes[0].set_ylabel("greedy accuracy % (95% CI)")
    axes[-1].legend(fontsize="small")
    return png(fig)
