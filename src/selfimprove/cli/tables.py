"""Rich tables shared by the commands that print results."""

from __future__ import annotations


def console():
    """A rich console for result tables: 120 columns when output is not a terminal (logs, README)."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=120)


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def print_strategy_table(rows: dict[str, dict], title: str = "") -> None:
    from rich.table import Table

    from ..metrics.accuracy import failure_cells

    table = Table(title=title)
    for col in ("strategy", "acc %", "95% CI", "unparsed", "errors", "truncated", "unscored", "tok/ex",
                "calls", "wall s",
                "pass@k / maj@k"):
        # the row label is what a reader looks for: never cut it; the pool column may wrap
        table.add_column(col, justify="left" if col == "strategy" else "right",
                         no_wrap=col != "pass@k / maj@k")
    for name, m in rows.items():
        ci = m.get("ci95")
        pool = ""
        if "n_samples" in m:
            k = m["n_samples"]
            pool = f"pass@{k} {_pct(m[f'pass@{k}'])} · maj@{k} {_pct(m[f'maj@{k}'])}"
        table.add_row(name, _pct(m["accuracy"]), f"{_pct(ci[0])}–{_pct(ci[1])}" if ci else "—",
                      *failure_cells(m, errors=True), f"{m['tokens_per_example']:.0f}", str(m["calls"]),
                      f"{m['wall_s']:.1f}", pool)
    console().print(table)


def print_correction_table(rows: dict[str, dict]) -> None:
    """Transitions of the correction strategies (self-debug, progco, ...), one row per strategy and feedback
    source: oracle feedback and self-written feedback are separate rows, never pooled."""
    from rich.table import Table

    rows = {k: m for k, m in rows.items() if "correction" in m}
    if not rows:
        return
    table = Table(title="correction transitions (unparseable counted as wrong)")
    for col in ("strategy", "feedback", "acc1 %", "acc2 %", "Δ", "c→c", "c→w", "w→c", "w→w"):
        table.add_column(col, justify="left" if col in ("strategy", "feedback") else "right")
    for name, m in rows.items():
        c = m["correction"]
        t = c["transitions"]
        delta = None if c["delta"] is None else f"{100 * c['delta']:+.1f}"
        table.add_row(name, m.get("feedback", ""), _pct(c["acc1"]), _pct(c["acc2"]), delta or "—",
                      *(str(t[k]) for k in ("cc", "cw", "wc", "ww")))
    console().print(table)


def print_verification_table(rows: dict[str, dict]) -> None:
    """The generation–verification gap of strategies that scored their own pool (best-of-n, codet): the mean
    accuracy of the samples, the accuracy of the sample the self-verifier picked, their difference, and the
    AUROC of the scores against correctness."""
    from rich.table import Table

    rows = {k: m["verification"] for k, m in rows.items() if m.get("verification")}
    if not rows:
        return
    table = Table(title="self-verification of the sample pool (gold read only here, after the run)")
    for col in ("strategy", "sample acc %", "selected acc %", "gap", "AUROC", "unscored"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for name, v in rows.items():
        gap = v.get("gap")
        auroc = (v.get("sample_calibration") or {}).get("auroc")
        table.add_row(name, _pct(v.get("mean_sample_accuracy")), _pct(v.get("selected_accuracy")),
                      "—" if gap is None else f"{100 * gap:+.1f}", "—" if auroc is None else f"{auroc:.3f}",
                      str(v.get("n_unscored", 0)))
    console().print(table)


def print_round_table(run_dir) -> None:
    """``train``'s closing table: accuracy per round and split, rows, loss (DPO: log π(chosen))."""
    from ..training.loop import round_metrics

    rounds = round_metrics(run_dir)
    if not rounds:
        return
    splits = list(rounds[0]["eval"])
    dpo = any("chosen_logp_after" in m.get("train", {}) for m in rounds)  # preference runs: watch the chosen
    print("round  " + "  ".join(f"{s:>22}" for s in splits) + "   rows  loss" + ("  logp(chosen) before>after"
                                                                               if dpo else ""))
    for m in rounds:
        cells = []
        for s in splits:
            a = m["eval"][s]
            ci = a.get("ci95") or (None, None)
            acc = "n/a" if a["accuracy"] is None else f"{a['accuracy']:.3f}"
            cells.append(f"{acc} [{_f(ci[0])},{_f(ci[1])}] u{a['unparsed']}".rjust(22))
        rows = m.get("data", {}).get("rows", "-")
        loss = m.get("train", {}).get("last_loss")
        t = m.get("train", {})
        lp = f"  {_f(t.get('chosen_logp_before'))} > {_f(t.get('chosen_logp_after'))}" if dpo else ""
        print(f"{m['round']:>5}  " + "  ".join(cells) + f"  {rows:>5}  {_f(loss)}" + lp)


def _f(x) -> str:
    return "-" if x is None else f"{x:.2f}"
