"""The learning-rate grid: one SFT call per (row set, learning rate) from the same start, scored greedily.

    selfimprove demo --out DEMO                     # or any `selfimprove train` runs with a round 1
    python scripts/lr_grid.py DEMO/lmsi DEMO/no-filter DEMO/star [--model tiny] \
        [--grid 3e-4:40 1e-4:40 3e-5:80] [--splits dev test-hard] [--limit 200] [--json out.json]

The numbers of docs/results/learning-rate.md. For each run directory, its ``round-1/rows.jsonl`` (the rows
the starting model's own samples gave that method) is trained on in one ``train_sft`` call per ``LR:STEPS``
cell, each from a fresh copy of ``--model`` (the start: a built-in name or a model directory) and a fresh
Adam state, with the training loop's SFT defaults otherwise (batch 16, 2 epochs capped by STEPS, constant
schedule) and round 1's seed; then greedy accuracy (``Greedy`` through the ``hf`` backend, as every round's
evaluation) on the first ``--limit`` examples of each split. The start model is scored the same way once. An
unparseable or truncated answer counts as wrong (accuracy's rule). Prints one Markdown table,
``dev / test-hard`` per cell.

Not covered: several seeds (pass ``--seed``; round r of a run with seed s uses s * 1000 + r), LoRA.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def parse_cell(text: str) -> tuple[float, int]:
    lr, _, steps = text.partition(":")
    try:
        return float(lr), int(steps)
    except ValueError:
        raise SystemExit(f"--grid: {text!r} is not LR:STEPS (e.g. 3e-5:80)") from None


def score(model, tok, task, splits: list[str], limit: int, max_tokens: int) -> dict[str, dict]:
    """Greedy accuracy of an in-memory model on the first ``limit`` examples of each split, with each
    example's outcome (``by_id``: right, wrong or None if undecided) for the paired test against the start."""
    from selfimprove.backends.hf import HFBackend
    from selfimprove.metrics.accuracy import accuracy
    from selfimprove.metrics.stats import correct_by_id
    from selfimprove.strategies.base import score_traces
    from selfimprove.strategies.sample import Greedy

    backend = HFBackend.from_model(model, tok, name="lr-grid")
    out = {}
    for split in splits:
        examples = task.examples(split)[:limit]
        traces = score_traces(task, examples, Greedy(max_tokens=max_tokens).run(backend, task, examples))
        out[split] = {**accuracy(traces), "by_id": correct_by_id(traces)}
    return out


def _shown(acc: dict) -> str:
    if acc["accuracy"] is None or acc["p_vs_start"] is None:  # no decided example
        return "n/a"
    return f"{100 * acc['accuracy']:.1f} (p {acc['p_vs_start']:.2g})"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories with round-1/rows.jsonl")
    ap.add_argument("--model", default="tiny", help="the starting model the rows came from")
    ap.add_argument("--task", default="arithmetic")
    ap.add_argument("--grid", nargs="+", default=["3e-4:40", "1e-4:40", "3e-5:80"], help="LR:STEPS cells")
    ap.add_argument("--splits", nargs="+", default=["dev", "test-hard"])
    ap.add_argument("--limit", type=int, default=200, help="examples scored per split")
    ap.add_argument("--seed", type=int, default=1, help="training seed (round 1 of a seed-0 run: 1)")
    ap.add_argument("--json", type=Path, help="also write every cell's accuracy record here")
    args = ap.parse_args(argv)
    cells = [parse_cell(c) for c in args.grid]
    for run in args.runs:
        if not (run / "round-1" / "rows.jsonl").is_file():
            raise SystemExit(f"{run}: no round-1/rows.jsonl (a run with at least one SFT round is needed)")

    from selfimprove.cli.main import quiet_third_party
    from selfimprove.metrics.stats import mcnemar_exact

    quiet_third_party()
    from selfimprove.tasks import get_task
    from selfimprove.tiny import resolve_model
    from selfimprove.training.config import LoopConfig
    from selfimprove.training.settings import SFTSettings
    from selfimprove.training.sft import load_policy, train_sft

    task, start = get_task(args.task), resolve_model(args.model)
    max_tokens = LoopConfig().max_tokens
    model, tok = load_policy(start)
    results = {"start": score(model, tok, task, args.splits, args.limit, max_tokens)}
    print(f"start {start}: " + ", ".join(f"{s} {results['start'][s]['accuracy']:.3f}" for s in args.splits),
          flush=True)
    for run in args.runs:
        rows = [json.loads(line) for line in (run / "round-1" / "rows.jsonl").read_text().splitlines()]
        rows = [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]
        for lr, steps in cells:
            model, tok = load_policy(start)
            model, res = train_sft(model, tok, rows, SFTSettings(lr=lr, max_steps=steps, seed=args.seed))
            acc = score(model, tok, task, args.splits, args.limit, max_tokens)
            for s in args.splits:  # exact McNemar against the start, on the same examples
                test = mcnemar_exact(results["start"][s]["by_id"], acc[s]["by_id"])
                acc[s]["p_vs_start"] = test["p_value"]
            results[f"{run.name} {lr:g}:{steps}"] = {**acc, "rows": len(rows), "steps": res.steps}
            print(f"{run.name} ({len(rows)} rows) lr {lr:g} {res.steps} steps: "
                  + ", ".join(f"{s} {acc[s]['accuracy']:.3f}" for s in args.splits), flush=True)
    head = " | ".join(f"lr {lr:g}, {steps} steps" for lr, steps in cells)
    print(f"\n| rows | {head} |\n|---|" + "---|" * len(cells))
    for run in args.runs:
        cell = [" / ".join(_shown(results[f"{run.name} {lr:g}:{steps}"][s]) for s in args.splits)
                for lr, steps in cells]
        n = results[f"{run.name} {cells[0][0]:g}:{cells[0][1]}"]["rows"]
        print(f"| `{run.name}` ({n:,} rows) | " + " | ".join(cell) + " |")
    print(f"\n({' / '.join(args.splits)} %, first {args.limit} examples each, p = exact McNemar against the "
          "start; start: "
          + " / ".join(f"{100 * results['start'][s]['accuracy']:.1f}" for s in args.splits) + ")")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
