"""Benchmark (not a test): where `selfimprove demo`'s time goes, as ratios of one another and of pretraining.

One run, side by side on the same machine: pretrain the demo's model into a fresh selfimprove home (the
reference: pretraining was measured at 19.0k tokens/s, ~79 s, and the cached demo at 124 s on an idle
2-core machine), then run `selfimprove demo` on the cached model and read the phase times the demo and its
training loop record (`demo/resources` in the run store, `seconds` in every round's metrics). The goal "a
cached demo in 60 s where pretraining takes ~79 s" is the ratio demo ÷ pretraining ≤ 0.76.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_demo_phases.py            # ~4 minutes on 2 idle cores
    .venv/bin/python bench/bench_demo_phases.py --home /tmp/si-bench --reuse  # skip pretraining if cached
    # a check:
    .venv/bin/python bench/bench_demo_phases.py --model micro --recipe bench/recipes/micro-demo.toml

Phases: model load and inference table (greedy and self-consistency on dev), the shared round-0 evaluation,
and per arm and round: generate (k samples per training problem), select (labels, rows), train (SFT, including
loading and saving the policy) and eval (greedy on dev, test and test-hard); "other" is the rest of the demo's
wall time (imports, tables, the HTML page). On a shared machine the absolute seconds are noisy: trust the
ratios, and rerun. The CPU seconds per phase (``time.process_time``: every thread of the process) move far
less with other jobs' load than the wall seconds do: compare two checkouts by them, one after the other in one
job (``--reuse`` on the same home, one thread each).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", help="selfimprove home (default: a fresh temporary directory)")
    ap.add_argument("--reuse", action="store_true", help="reuse a cached model in --home; pretraining's time "
                                                         "is then extrapolated from --reference-steps of "
                                                         "its loop run in this job, half before and half "
                                                         "after the demo")
    ap.add_argument("--reference-steps", type=int, default=90,
                    help="with --reuse: pretraining steps run as the reference (default 90 of tiny's 900)")
    ap.add_argument("--slice-only", type=int, help=argparse.SUPPRESS)  # the reference, in a child process
    ap.add_argument("--recipe", help="demo recipe (default: recipes/demo.toml)")
    ap.add_argument("--model", default="tiny", help="the built-in model the recipe names (default: tiny; a "
                                                    "micro recipe checks the bench in seconds)")
    args = ap.parse_args()
    if args.slice_only is not None:
        print(json.dumps(pretrain_slice(args.model, args.slice_only)))
        return
    home = Path(args.home or tempfile.mkdtemp(prefix="si-bench-"))
    os.environ["SELFIMPROVE_HOME"] = str(home)

    from selfimprove.cli.main import main as cli
    from selfimprove.cli.main import quiet_third_party
    from selfimprove.store.runs import RunStore
    from selfimprove.tiny import ensure_model
    from selfimprove.tiny.config import PRESETS
    from selfimprove.training import round_metrics

    quiet_third_party()  # pretraining saves its model before the demo quiets itself
    t0, c0 = time.perf_counter(), time.process_time()
    ensure_model(args.model, force=not args.reuse, progress=False)
    pretrain_s, pretrain_cpu = time.perf_counter() - t0, time.process_time() - c0
    if args.reuse:
        pretrain_s, pretrain_cpu = reference(args.model, args.reference_steps // 2)
    out, store_path = home / "bench-demo", home / "bench-runs.db"
    t0, c0 = time.perf_counter(), time.process_time()
    cli(["demo", "--out", str(out), "--store", str(store_path), *(["--recipe", args.recipe] if args.recipe
                                                                    else [])])
    demo_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0  # CPU: every thread of the process
    if args.reuse:
        after = reference(args.model, args.reference_steps - args.reference_steps // 2)
        pretrain_s, pretrain_cpu = pretrain_s + after[0], pretrain_cpu + after[1]
        full = PRESETS[args.model].steps / args.reference_steps
        pretrain_s, pretrain_cpu = pretrain_s * full, pretrain_cpu * full

    store = RunStore(str(store_path))
    run_id = store.list_runs(limit=1)[0]["id"]
    resources = store.metrics(run_id).get("demo/resources", {})
    wall = {"model load + inference table": resources.get("inference_s", 0.0)}
    cpu = {"model load + inference table": resources.get("inference_cpu_s", 0.0)}
    for arm_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        for m in round_metrics(arm_dir):
            if m["round"] == 0 and not m.get("reused_from"):
                for into, key in ((wall, "eval_seconds"), (cpu, "eval_cpu_seconds")):
                    name = "round-0 evaluation (shared)"
                    into[name] = into.get(name, 0.0) + (m.get(key) or 0.0)
            for into, key in ((wall, "seconds"), (cpu, "cpu_seconds")):
                for phase, s in (m.get(key) or {}).items():
                    into[f"{phase} (all arms)"] = into.get(f"{phase} (all arms)", 0.0) + (s or 0.0)
    rest = "other (imports, cached-model check, tables, page)"
    wall[rest] = max(0.0, demo_s - sum(wall.values()))
    cpu[rest] = max(0.0, cpu_s - sum(cpu.values()))

    how = f"extrapolated from {args.reference_steps} steps" if args.reuse else "measured"
    print(f"\npretraining ({how}): {pretrain_s:.1f} s wall, {pretrain_cpu:.1f} s CPU · cached demo: "
          f"{demo_s:.1f} s wall, {cpu_s:.1f} s CPU (all threads) · demo ÷ pretraining = "
          f"{demo_s / pretrain_s:.2f} wall (goal ≤ 0.76), {cpu_s / pretrain_cpu:.2f} CPU")
    print(f"{'phase':<52}{'wall s':>8}{'% of demo':>11}{'÷ pretrain':>12}{'CPU s':>8}{'% of CPU':>10}")
    for name, s in sorted(wall.items(), key=lambda kv: -kv[1]):
        c = cpu.get(name, 0.0)
        print(f"{name:<52}{s:>8.1f}{100 * s / demo_s:>10.1f}%{s / pretrain_s:>12.2f}{c:>8.1f}"
              f"{100 * c / max(cpu_s, 1e-9):>9.1f}%")
    print(json.dumps({"pretrain_s": pretrain_s, "pretrain_cpu_s": pretrain_cpu, "demo_s": demo_s,
                      "cpu_s": cpu_s, "phases": wall,
                      "cpu_phases": cpu, "threads": os.environ.get("OMP_NUM_THREADS")}, indent=None))

def reference(model: str, steps: int) -> tuple[float, float]:
    """``pretrain_slice`` in a child process, so that the demo, run in this one, pays for its imports as
    ``selfimprove demo`` does."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, __file__, "--model", model, "--slice-only", str(steps)],
                         check=True, capture_output=True, text=True).stdout
    wall, cpu = json.loads(out.strip().splitlines()[-1])
    return wall, cpu


def pretrain_slice(model: str, steps: int) -> tuple[float, float]:
    """(wall, CPU) seconds of ``steps`` steps of the built-in ``model``'s pretraining loop run here (fresh
    weights, no evaluation, nothing cached), less the set-up: the reference measured side by side with the
    demo. Three runs, of 1 step (a warm-up: the first pays for imports), 1 step and 1 + ``steps`` steps;
    the last two's difference is the steps' time."""
    import dataclasses

    from selfimprove.tiny.config import PRESETS
    from selfimprove.tiny.pretrain import pretrain

    times = []
    for n in (1, 1, 1 + max(1, steps)):
        with tempfile.TemporaryDirectory(prefix="si-bench-ref-") as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            pretrain(dataclasses.replace(PRESETS[model], steps=n), tmp, name=f"{model}-reference",
                     progress=False, evaluate=False)
            times.append((time.perf_counter() - t0, time.process_time() - c0))
    return times[2][0] - times[1][0], times[2][1] - times[1][1]

if __name__ == "__main__":
    main()
