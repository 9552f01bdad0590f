"""Study: learning from search (``mcts-dpo``, ``step-dpo``) against STaR, the no-filter control and a
no-search
DPO control at the same generation budget, over seeds, with paired tests (the search results page).

For every seed, every arm trains ``--rounds`` rounds from the same starting model (``train --method ...``
through
the one round loop; round 0's evaluation is shared) on the same training problems and is evaluated
greedily on the
same ``--eval-limit`` problems of ``dev`` and ``--hard-split``. The no-search control is ``gold-dpo`` (one
gold-labelled whole-solution pair per problem) with ``n`` set so its samples spend about the generated tokens
per problem that ``mcts-dpo`` spent in round 1 of the same seed (printed). Paired tests pool (seed, problem)
pairs: each arm's last round against STaR, against no-filter, against the no-search control and against the
start (exact McNemar p, paired-bootstrap 95 % CI in points).

    python scripts/search_train_study.py --model tiny --seeds 0 1 2 --train-limit 64 --eval-limit 100 \\
        --out-dir RUNS --json docs/results/search-train.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ARMS = ("mcts-dpo", "step-dpo", "star", "no-filter", "gold-dpo")
REFERENCES = ("start", "star", "no-filter", "gold-dpo")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny")
    p.add_argument("--task", default="arithmetic")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--n", type=int, default=4, help="samples per problem (star, step-dpo, no-filter: greedy)")
    p.add_argument("--train-limit", type=int, default=64)
    p.add_argument("--eval-limit", type=int, default=100)
    p.add_argument("--hard-split", default="test-hard")
    p.add_argument("--arms", nargs="+", default=list(ARMS))
    p.add_argument("--out-dir", required=True, help="run directories go here (resumable)")
    p.add_argument("--json", help="write every number as JSON here")
    p.add_argument("--pool", action="store_true", help="train nothing: pool the finished runs of --seeds in "
                                                        "--out-dir (one job per seed, say) into one table")
    args = p.parse_args(argv)
    from selfimprove.cli.main import quiet_third_party

    quiet_third_party()  # no transformers progress bars or warnings, as on the command line
    if args.pool:
        return pool(args)

    import torch

    from selfimprove.tasks import get_task
    from selfimprove.tiny.models import resolve_model
    from selfimprove.training import LoopConfig, run_loop

    torch.set_num_threads(1)
    task, model = get_task(args.task), resolve_model(args.model)
    out = Path(args.out_dir)
    results: dict[str, dict] = {}
    for seed in args.seeds:
        first = None
        for arm in args.arms:
            extra = {}
            if arm == "gold-dpo" and "mcts-dpo" in args.arms:
                extra["n"] = matched_n(
                    out / f"s{seed}-mcts-dpo", args.train_limit, out / f"s{seed}-{args.arms[0]}"
                )
            cfg = LoopConfig.from_dict(
                {
                    "method": arm,
                    "rounds": args.rounds,
                    "n": args.n,
                    "seed": seed,
                    "train_limit": args.train_limit,
                    "eval_limit": args.eval_limit,
                    "eval_splits": [args.hard_split],
                    "patience": 0,
                    **extra,
                }
            )
            t0 = time.perf_counter()
            run = out / f"s{seed}-{arm}"
            summary = run_loop(cfg, task, model, run, log=lambda m: None, reuse_start=first)
            first = first or run
            data = json.loads((run / "round-1/data.json").read_text())
            results[f"{seed}/{arm}"] = {
                "dev": summary["dev_accuracy"],
                "n": cfg.n,
                "seconds": round(time.perf_counter() - t0, 1),
                "generated_tokens_round1": round1_tokens(run),
                "pairs_or_rows": data.get("pairs", data.get("rows")),
            }
            print(seed, arm, json.dumps(results[f"{seed}/{arm}"]), flush=True)
    report = {"args": vars(args), "runs": results, "paired": paired(out, args)}
    print_table(report, args)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


def pool(args) -> int:
    """The table of finished runs (``--out-dir/s<seed>-<arm>``), without training or loading a model."""
    out, results = Path(args.out_dir), {}
    for seed in args.seeds:
        for arm in args.arms:
            run = out / f"s{seed}-{arm}"
            if not (run / "summary.json").exists():
                raise SystemExit(f"{run}: no summary.json (the run did not finish); run this seed "
                                 "without --pool")
            summary = json.loads((run / "summary.json").read_text())
            data = json.loads((run / "round-1/data.json").read_text())
            results[f"{seed}/{arm}"] = {
                "dev": summary["dev_accuracy"],
                "n": matched_n(out / f"s{seed}-mcts-dpo", args.train_limit, out / f"s{seed}-{args.arms[0]}")
                if arm == "gold-dpo" and "mcts-dpo" in args.arms else args.n,
                "generated_tokens_round1": round1_tokens(run),
                "pairs_or_rows": data.get("pairs", data.get("rows")),
            }
    report = {"args": vars(args), "runs": results, "paired": paired(out, args)}
    print_table(report, args)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


def round1_tokens(run: Path) -> int:
    """Generated tokens of round 1's data generation (every completion of every trace)."""
    total = 0
    for line in (run / "round-1/traces.jsonl").read_text().splitlines():
        total += sum(
            c["completion_tokens"] for s in json.loads(line)["steps"] for c in s.get("completions", [])
        )
    return total


def matched_n(mcts_run: Path, problems: int, start_run: Path) -> int:
    """Samples per problem whose tokens match mcts-dpo's round-1 generation: its tokens per problem divided by
    the starting model's mean greedy completion length on dev (round 0)."""
    per_problem = round1_tokens(mcts_run) / problems
    lens = [
        c["completion_tokens"]
        for line in (start_run / "round-0/eval-dev.jsonl").read_text().splitlines()
        for s in json.loads(line)["steps"]
        for c in s.get("completions", [])
    ]
    return max(2, round(per_problem / (sum(lens) / len(lens))))


def paired(out: Path, args) -> dict:
    from selfimprove.metrics.stats import correct_by_id, mcnemar_exact, paired_bootstrap
    from selfimprove.training.loop import eval_traces

    res: dict = {}
    for split in ("dev", args.hard_split):
        by_arm: dict[str, dict] = {a: {} for a in (*args.arms, "start")}
        for seed in args.seeds:
            for arm in args.arms:
                run = out / f"s{seed}-{arm}"
                last = json.loads((run / "summary.json").read_text())["rounds_done"]
                by_arm[arm].update(
                    {(seed, k): v for k, v in correct_by_id(eval_traces(run, last, split)).items()}
                )
            start = out / f"s{seed}-{args.arms[0]}"
            by_arm["start"].update(
                {(seed, k): v for k, v in correct_by_id(eval_traces(start, 0, split)).items()}
            )
        res[split] = {}
        for arm in (*args.arms, "start"):
            acc = sum(bool(v) for v in by_arm[arm].values()) / max(1, len(by_arm[arm]))
            row = {"accuracy": acc, "n": len(by_arm[arm])}
            for ref in REFERENCES:
                if ref in by_arm and ref != arm and by_arm[ref]:
                    m = mcnemar_exact(by_arm[ref], by_arm[arm])
                    b = paired_bootstrap(by_arm[ref], by_arm[arm], seed=0)
                    row[f"vs_{ref}"] = {
                        "diff": m["diff"],
                        "p": m["p_value"],
                        "ci": (b["ci_low"], b["ci_high"]),
                    }
            res[split][arm] = row
    return res


def print_table(report: dict, args) -> None:
    for split, rows in report["paired"].items():
        print(f"\n{split}: seeds {args.seeds}, {args.eval_limit} problems each (pairs = seed x problem)")
        print("| arm | accuracy % | " + " | ".join(f"vs {r}, points (CI; p)" for r in REFERENCES) + " |")
        print("|---|---|" + "---|" * len(REFERENCES))
        for arm, row in rows.items():
            cells = []
            for ref in REFERENCES:
                v = row.get(f"vs_{ref}")
                if v is None or v["diff"] is None:
                    cells.append("")
                    continue
                lo, hi = v["ci"]
                ci = "" if lo is None else f"{100 * lo:+.1f}…{100 * hi:+.1f}; "
                cells.append(f"{100 * v['diff']:+.1f} ({ci}p = {v['p']:.3g})")
            print(f"| {arm} | {100 * row['accuracy']:.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
