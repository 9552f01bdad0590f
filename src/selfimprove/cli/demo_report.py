"""The demo's closing tables: accuracy per arm, round and difficulty, and the paired tests that say whether
the no-gold method's gain is real."""

from __future__ import annotations

from pathlib import Path


def _cell(a: dict | None) -> str:
    if not a or a.get("accuracy") is None:
        return "—"
    lo, hi = a["ci95"]
    return f"{100 * a['accuracy']:.1f} ({100 * lo:.0f}–{100 * hi:.0f})"


def print_rounds(out: Path, summaries: dict, splits: tuple[str, ...]) -> None:
    """The per-round table; the pseudo-label precision column only where some arm has pseudo-labels (lmsi):
    gold-filtered and no-filter arms have none, and an all-empty column said nothing."""
    from rich.table import Table

    from ..training import round_metrics
    from .tables import console

    rounds = {arm: list(round_metrics(out / arm)) for arm in summaries}
    precision = any(((m.get("data") or {}).get("pseudo_labels") or {}).get("precision") is not None
                    for ms in rounds.values() for m in ms)
    title = "greedy accuracy % (95% CI) per round"
    if precision:
        title += (" · pseudo-label precision = share of kept labels that match gold (reported, never used "
                  "by lmsi)")
    table = Table(title=title)
    for col in ("method", "round", *splits, "kept rows", *(("label precision",) if precision else ()),
                "train loss", "round s"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for arm, ms in rounds.items():
        for m in ms:
            data = m.get("data", {})
            pl = data.get("pseudo_labels") or {}
            prec = pl.get("precision")
            train = m.get("train", {})
            loss = (f"{train['first_loss']:.3f}→{train['last_loss']:.3f}"
                    if train.get("first_loss") is not None else "—")
            secs = (sum(m.get("seconds", {}).values()) if m.get("seconds")
                    # a shared round 0 costs once
                    else 0 if m.get("reused_from") else m.get("eval_seconds", 0))
            cells = [arm, str(m["round"]), *(_cell(m["eval"].get(s)) for s in splits),
                     str(data.get("rows", "—")) if m["round"] else "—"]
            if precision:
                cells.append("—" if prec is None else f"{prec:.3f} (n={pl.get('precision_n')})")
            table.add_row(*cells, loss, f"{secs:.0f}")
    console().print(table)


def paired_tests(out: Path, summaries: dict, split: str, seed: int = 0) -> dict:
    """Exact McNemar and paired bootstrap on ``split``: each arm's last round against round 0, and
    the first arm's (the no-gold method's) last round against every other arm's last round."""
    from rich.table import Table

    from ..metrics.stats import correct_by_id, mcnemar_exact, paired_bootstrap
    from ..training import eval_traces
    from .tables import console

    def correct(arm: str, r: int) -> dict:
        # unparseable answers count as wrong, as in the accuracy column
        return correct_by_id(eval_traces(out / arm, r, split))

    last = {arm: s["rounds_done"] for arm, s in summaries.items()}
    arms = list(summaries)
    comparisons = [(f"{arm} r{last[arm]} vs r0", correct(arm, 0), correct(arm, last[arm])) for arm in arms]
    comparisons += [(f"{arms[0]} r{last[arms[0]]} vs {arm} r{last[arm]}", correct(arm, last[arm]),
                     correct(arms[0], last[arms[0]])) for arm in arms[1:]]
    results, table = {}, Table(title=f"paired tests on {split} (B − A; exact McNemar p; bootstrap 95% CI)")
    for col in ("B vs A", "A %", "B %", "Δ points", "95% CI", "B-only / A-only right", "p", "verdict"):
        table.add_column(col, justify="left" if col in ("B vs A", "verdict") else "right")
    for label, a, b in comparisons:
        mc, bs = mcnemar_exact(a, b), paired_bootstrap(a, b, seed=seed)
        significant = mc["p_value"] < 0.05
        verdict = ("significant gain" if mc["diff"] > 0 else "significant loss") if significant \
            else "not significant"
        results[label] = {"mcnemar": mc, "bootstrap": bs, "verdict": verdict}
        table.add_row(label, f"{100 * mc['acc_a']:.1f}", f"{100 * mc['acc_b']:.1f}",
                      f"{100 * mc['diff']:+.1f}",
                      f"{100 * bs['ci_low']:+.1f} … {100 * bs['ci_high']:+.1f}",
                      f"{mc['b_only']} / {mc['a_only']}", f"{mc['p_value']:.4f}", verdict)
    console().print(table)
    return results


def write_page(path: Path, out: Path, summaries: dict, splits: tuple[str, ...], tests: dict, *,
               title: str, inference: dict | None = None, test_split: str | None = None) -> Path:
    """The demo's HTML page (``report/templates/demo.html``): accuracy per round for every arm and split (95 %
    CI bars; the figure the viewer's multi-arm page draws), the per-round table, the paired tests and the
    inference comparison (``test_split``: where the paired tests ran; default the first split that is neither
    dev nor test-hard). Self-contained: the figure is embedded."""
    import base64

    from ..report import plots
    from ..report.render import render
    from ..training import round_metrics

    rounds = {arm: list(round_metrics(out / arm)) for arm in summaries}
    figure = plots.arms_by_split(rounds, splits)
    arms = [{"name": arm, "rounds": ms} for arm, ms in rounds.items()]
    test_split = test_split or next((s for s in splits if s not in ("dev", "test-hard")), splits[-1])
    html = render("demo.html", static=True, title=title, arms=arms, splits=splits, tests=tests,
                  test_split=test_split, inference=inference or {},
                  figure=figure and "data:image/png;base64," + base64.b64encode(figure).decode())
    path = Path(path)
    path.write_text(html, encoding="utf-8")
    return path
