"""Paired comparison of training runs evaluated on the same held-out examples (the arms of one study).

The first run directory is the control (e.g. ``no-filter``); every other run's final round is compared with
the control's final round on the same examples, and each run's final round with its own round 0 (the shared
start). Per comparison: n, both accuracies, the difference in points with its paired-bootstrap 95 % CI, and
the exact McNemar p-value. A missing answer (truncated, unparseable, a program that did not run or printed no
number) counts as wrong and is counted in ``no answer``. Also printed per run: the rows it trained on and,
where the method reports it, the share of kept rows the gold answer confirms (``kept_gold_precision``).

    python scripts/compare_runs.py RUNS/no-filter RUNS/code-star RUNS/self-code-align --split test \
        [--json out.json]

Not covered: several seeds (run the arms again with ``--seed`` and pass each seed's dirs separately).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _correct(run: Path, r: int, split: str) -> tuple[dict[str, bool], int]:
    from selfimprove.training.loop import eval_traces

    traces = eval_traces(run, r, split)
    return {t.example_id: bool(t.correct) for t in traces}, sum(t.final_answer is None for t in traces)


def _last_round(run: Path) -> int:
    rounds = [int(p.name.split("-")[1]) for p in run.glob("round-*") if (p / "metrics.json").exists()]
    if not rounds:
        raise SystemExit(f"{run}: no evaluated round (round-*/metrics.json)")
    return max(rounds)


def _self_check_report(run: Path, r: int) -> dict | None:
    """Self-verification against gold on round r's training samples, where the run wrote checking programs
    (self-code-align on a program-aided task): how often a sample is right (generation), how often the model's
    own checker holds on right and on wrong samples, and the precision of what it kept (verification)."""
    from selfimprove.records import Trace
    from selfimprove.tasks import get_task

    path = run / f"round-{r}" / "traces.jsonl"
    if not r or not path.exists():
        return None
    traces = [Trace.from_dict(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    if not any(s.kind == "verify-program" for t in traces for s in t.steps):
        return None
    cfg = json.loads((run / "config.json").read_text())
    task = get_task(cfg["task"], data=cfg.get("data"))
    try:
        by_id = {e.id: e for e in task.examples(cfg["loop"].get("train_split", "train"))}
        n = right = held = held_right = kept = kept_right = 0
        for t in traces:
            gen = t.first("generate")
            checks = iter(s for s in t.steps if s.kind == "verify-program")
            for a, v in zip(gen.answers, gen.verdicts):
                ok = bool(task.check(by_id[t.example_id], a)) if a is not None else False
                check = next(checks) if a is not None else None
                h = bool(check and check.verdicts and check.verdicts[0].correct)
                n, right = n + 1, right + ok
                held, held_right = held + h, held_right + (h and ok)
                kept, kept_right = kept + bool(v.correct), kept_right + (bool(v.correct) and ok)
    finally:
        task.close()
    return {"samples": n, "right": right, "checker_held": held, "held_right": held_right,
            "held_wrong": held - held_right, "kept": kept, "kept_right": kept_right}


def _pair(a: dict[str, bool], b: dict[str, bool]) -> dict:
    from selfimprove.metrics.stats import mcnemar_exact, paired_bootstrap

    if set(a) != set(b):
        raise SystemExit("the runs were evaluated on different examples; pairs need the same ones")
    m, boot = mcnemar_exact(a, b), paired_bootstrap(a, b)
    return {"n": m["n"], "acc_a": m["acc_a"], "acc_b": m["acc_b"], "diff": m["diff"], "ci": (boot["ci_low"],
            boot["ci_high"]), "p": m["p_value"], "a_only": m["a_only"], "b_only": m["b_only"]}


def _share(gap: dict, k: str, d: str) -> str:
    return f"{gap[k]}/{gap[d]} = {gap[k] / gap[d]:.2f}" if gap[d] else f"{gap[k]}/0"


def _fmt(row: dict) -> str:
    lo, hi = row["ci"]
    return (f"{100 * row['acc_a']:5.1f} → {100 * row['acc_b']:5.1f}  Δ {100 * row['diff']:+5.1f} "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}]  McNemar p {row['p']:.3f}  "
            f"(only first {row['a_only']}, only second {row['b_only']}, n {row['n']})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run directories; the first is the control")
    p.add_argument("--split", default="test", help="evaluation split to pair on")
    p.add_argument("--json", type=Path, help="write every number here")
    args = p.parse_args(argv)
    control = args.runs[0]
    last_c = _last_round(control)
    ctrl, _ = _correct(control, last_c, args.split)
    out = []
    for run in args.runs:
        last = _last_round(run)
        start, unparsed0 = _correct(run, 0, args.split)
        final, unparsed = _correct(run, last, args.split)
        stats = json.loads((run / f"round-{last}" / "metrics.json").read_text()) if last else {}
        build = stats.get("data", {})
        row = {"run": str(run), "round": last, "no_answer_start": unparsed0, "no_answer_final": unparsed,
               "vs_start": _pair(start, final), "vs_control": None if run == control else _pair(ctrl, final),
               "rows": build.get("rows"), "kept_gold_precision": build.get("kept_gold_precision")}
        out.append(row)
        print(f"{run.name}: round {last}, rows {row['rows']}, kept_gold_precision "
              f"{row['kept_gold_precision']}, no answer {unparsed0} → {unparsed}")
        print(f"  vs its round 0:        {_fmt(row['vs_start'])}")
        if row["vs_control"]:
            print(f"  vs {control.name} (control): {_fmt(row['vs_control'])}")
        gap = _self_check_report(run, last)
        if gap:
            row["self_check"] = gap
            print("  self-written checkers on the training samples: right "
                  f"{_share(gap, 'right', 'samples')}; held on right {_share(gap, 'held_right', 'right')}; "
                  f"held on wrong {gap['held_wrong']}/{gap['samples'] - gap['right']}; precision of held "
                  f"{_share(gap, 'held_right', 'checker_held')}; of kept {_share(gap, 'kept_right', 'kept')}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
