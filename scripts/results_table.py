"""Print a stored eval run as a Markdown table with paired tests against its first strategy.

    python scripts/results_table.py RUN_ID [--store runs.db]

Columns: accuracy with its bootstrap CI, the failure counts of the eval table (unparsed, truncated, unscored:
``metrics.accuracy.failure_cells``), tokens per example, and against the first strategy of the run (the
baseline, e.g. greedy) the paired difference with its paired-bootstrap 95 % CI and the exact McNemar p-value
(``metrics.stats``; an unparseable or undecided answer counts as wrong, as in accuracy and the HTML report).
"""

from __future__ import annotations

import argparse

from selfimprove.metrics.accuracy import failure_cells
from selfimprove.metrics.stats import mcnemar_exact, paired_bootstrap
from selfimprove.store.runs import RunStore


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_id")
    ap.add_argument("--store", help="run store (default: $SELFIMPROVE_HOME/runs.db)")
    args = ap.parse_args(argv)
    store = RunStore(args.store)
    metrics = store.metrics(args.run_id)
    scopes = [s for s in metrics if store.done_ids(args.run_id, s)]
    correct = {s: {t.example_id: bool(t.correct) for t in store.traces(args.run_id, s)} for s in scopes}
    base = scopes[0]
    print(f"| strategy | accuracy % (95% CI) | unparsed | truncated | unscored | tokens/ex | Δ vs {base} "
          "(paired 95% CI) | McNemar p |")
    print("|---|---|---|---|---|---|---|---|")
    for s in scopes:
        m = metrics[s]
        lo, hi = m["ci95"]
        cells = " | ".join(failure_cells(m))
        if s == base:
            test = "— | —"
        else:
            mc, bs = mcnemar_exact(correct[base], correct[s]), paired_bootstrap(correct[base], correct[s])
            test = (f"{100 * mc['diff']:+.1f} ({100 * bs['ci_low']:+.1f} … {100 * bs['ci_high']:+.1f}) | "
                    f"{mc['p_value']:.3g}")
        print(f"| {s} | {100 * m['accuracy']:.1f} ({100 * lo:.1f}–{100 * hi:.1f}) | {cells} | "
              f"{m['tokens_per_example']:.0f} | {test} |")


if __name__ == "__main__":
    main()
