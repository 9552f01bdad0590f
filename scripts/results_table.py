"""Print stored eval runs as one Markdown table with paired tests against each run's first strategy.

    python scripts/results_table.py RUN_ID [RUN_ID ...] [--store runs.db]

Columns: accuracy with its bootstrap CI, the failure counts of the eval table (unparsed, truncated, unscored:
``metrics.accuracy.failure_cells``), tokens per example, and against the first strategy of the row's run (the
baseline, e.g. greedy) the paired difference with its paired-bootstrap 95 % CI and the exact McNemar p-value
(``metrics.stats``; an unparseable or undecided answer counts as wrong, as in accuracy and the HTML report).

With several runs (strategies of one study split over runs that repeat the baseline, served from the
completion cache; or a newer, larger measurement listed before an older one) a last column names each
row's run; a strategy is printed from the first run listed that finished it, and a later run's baseline row
only when its answers differ from the earlier one's (another n, other examples: then both stay visible, each
row paired with its own run's baseline).
A strategy the run has not finished (stopped part-way, to be resumed) is left out, with a line saying so
after the table.
"""

from __future__ import annotations

import argparse

from selfimprove.metrics.accuracy import failure_cells
from selfimprove.metrics.stats import mcnemar_exact, paired_bootstrap
from selfimprove.store.runs import RunStore


def rows(store: RunStore, run_id: str) -> tuple[list[tuple[str, dict, dict]], list[str]]:
    """(scope, metrics, example id -> right) for each finished strategy of a run, in run order; and the
    strategies with traces but no metrics yet (the run stopped while they ran), with their count."""
    metrics, scopes = store.metrics(run_id), store.scopes(run_id)
    out = [(s, metrics[s], {t.example_id: bool(t.correct) for t in store.traces(run_id, s)})
           for s in scopes if s in metrics]
    partial = [f"{s} ({len(store.done_ids(run_id, s))} examples done)" for s in scopes if s not in metrics]
    return out, partial


def table(store: RunStore, run_ids: list[str]) -> list[str]:
    """The Markdown lines: header, one row per strategy, then a line per left-out strategy."""
    several = len(run_ids) > 1
    lines = ["| strategy | n | accuracy % (95% CI) | unparsed | truncated | unscored | tokens/ex | "
             "Δ vs baseline (paired 95% CI) | McNemar p |" + (" run |" if several else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if several else "")]
    seen: dict[str, list[dict]] = {}  # scope -> the answers (example id -> right) of its printed rows
    notes = []
    for run_id in run_ids:
        found, partial = rows(store, run_id)
        notes += [f"{run_id}: {s} left out: not finished" for s in partial]
        if not found:
            continue
        base = found[0][2]
        for k, (scope, m, right) in enumerate(found):
            if (k == 0 and right in seen.get(scope, [])) or (k > 0 and scope in seen):
                continue  # the same baseline answers as an earlier run's; a strategy an earlier run measured
            seen.setdefault(scope, []).append(right)
            lo, hi = m["ci95"]
            if k == 0:
                test = "baseline | —"
            else:
                mc, bs = mcnemar_exact(base, right), paired_bootstrap(base, right)
                test = (f"{100 * mc['diff']:+.1f} ({100 * bs['ci_low']:+.1f} … {100 * bs['ci_high']:+.1f}) | "
                        f"{mc['p_value']:.3g}")
            acc = f"{100 * m['accuracy']:.1f} ({100 * lo:.1f}–{100 * hi:.1f})"
            lines.append(f"| {scope} | {m['n']} | {acc} | {' | '.join(failure_cells(m))} | "
                         f"{m['tokens_per_example']:.0f} | {test} |" + (f" {run_id} |" if several else ""))
    return lines + ([""] + notes if notes else [])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    ap.add_argument("--store", help="run store (default: $SELFIMPROVE_HOME/runs.db)")
    args = ap.parse_args(argv)
    print("\n".join(table(RunStore(args.store), args.run_ids)))


if __name__ == "__main__":
    main()
