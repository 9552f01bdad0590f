"""``selfimprove demo``: the whole loop on the built-in model, in minutes on a CPU.

pretrain (or reuse the cache) → evaluate greedy and self-consistency → two rounds of self-improvement without
gold labels (``lmsi``: majority-vote pseudo-labels) beside two rounds of the no-filter control (training on its
own greedy answers) and two rounds of ``star`` (gold-filtered) as the upper reference → a table of accuracy per
difficulty per round with 95 % CIs, paired tests (exact McNemar, paired bootstrap) of the no-gold method's last
round against the start and against the control's last round, and where everything is stored.

The dev split drives the patience rule and was used to choose the recipe's learning rate, so the paired tests
run on the held-out ``test`` split (in range, 500 problems), never on dev.

Settings come from ``recipes/demo.toml`` (or ``--recipe``); nothing is tuned per run. If a gain is not
significant the demo says so.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tomllib
from pathlib import Path

from ..errors import UserError

EPILOG = """examples:
  selfimprove demo                          # tiny model, recipes/demo.toml
  selfimprove demo --recipe my-demo.toml --out runs/demo
"""

DEFAULT_RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "demo.toml"
FALLBACK = {"model": "tiny", "seed": 0, "eval_limit": 500, "sc_n": 16, "test_split": "test",
            "arms": ["lmsi", "no-filter", "star"],
            "loop": {"rounds": 2, "n": 8, "temperature": 0.8, "train_limit": 500, "sft": {"max_steps": 80},
                     "patience": 3}}
ALIASES = {"sc_samples": "sc_n"}
"""Older demo recipe keys (the ``[loop]`` table takes ``LoopConfig``'s, aliases included)."""


def register(sub) -> None:
    p = sub.add_parser("demo", help="pretrain → evaluate → self-improve without gold labels, measured",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=__doc__.splitlines()[0])
    p.add_argument("--recipe", help="TOML recipe (default: recipes/demo.toml)")
    p.add_argument("--out", help="run directory (default: $SELFIMPROVE_HOME/demo/<run id>)")
    p.add_argument("--store", help="run store SQLite file (default: $SELFIMPROVE_HOME/runs.db)")
    p.set_defaults(func=run)


def load_recipe(path: str | None) -> dict:
    if path is None and not DEFAULT_RECIPE.exists():
        return FALLBACK  # installed without the recipes folder
    path = Path(path or DEFAULT_RECIPE)
    try:
        recipe = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("recipe not found", path=str(path)) from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"not valid TOML ({e})", path=str(path)) from None
    recipe = {ALIASES.get(k, k): v for k, v in recipe.items()}
    unknown = set(recipe) - set(FALLBACK)
    if unknown:
        raise UserError(f"unknown recipe key(s) {sorted(unknown)}; known: {sorted(FALLBACK)}", path=str(path))
    loop = {**FALLBACK["loop"], **recipe.get("loop", {})}
    for key, table in FALLBACK["loop"].items():  # a recipe's [loop.sft] adds to the fallback's, key by key
        if isinstance(table, dict) and isinstance(recipe.get("loop", {}).get(key), dict):
            loop[key] = {**table, **recipe["loop"][key]}
    return {**FALLBACK, **recipe, "loop": loop}


def run(args) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from ..backends.hf import HFBackend
    from ..files import home
    from ..runner import run_strategy, strategy_metrics
    from ..store.runs import RunStore
    from ..strategies.sample import Greedy
    from ..strategies.self_consistency import SelfConsistency
    from ..tasks.arithmetic import ArithmeticTask
    from ..tiny import PRESETS, ensure_model
    from ..training import LoopConfig, run_loop
    from .tables import print_strategy_table

    t_start = time.perf_counter()
    recipe = load_recipe(args.recipe)
    console = Console(stderr=True)
    name = recipe["model"]
    if name not in PRESETS:
        raise UserError(f"the demo runs a built-in model ({', '.join(PRESETS)}), got {name!r}", field="model")
    harder, test = "test-hard", recipe["test_split"]
    if test in ("dev", "train", harder):
        raise UserError(f"test_split must be a held-out in-range split such as 'test', not {test!r} (dev chose "
                        f"the learning rate and drives patience)", path=args.recipe, field="test_split")
    try:  # every arm's config, validated before the model is pretrained
        configs = {arm: LoopConfig.from_dict({**recipe["loop"], "method": arm, "seed": recipe["seed"],
                                              "eval_limit": recipe["eval_limit"], "eval_splits": (test, harder)})
                   for arm in recipe["arms"]}
    except (TypeError, ValueError) as e:
        raise UserError(f"[loop]: {e}", path=args.recipe or str(DEFAULT_RECIPE)) from None
    first_cfg = next(iter(configs.values()))
    console.rule(f"1 · the built-in model '{name}'")
    t0 = time.perf_counter()
    model_path, meta = ensure_model(name)
    pretrain_s = time.perf_counter() - t0
    acc = meta.get("dev_greedy_accuracy")
    console.print(f"{model_path}  ({pretrain_s:.0f} s here; pretraining took {meta.get('wall_seconds', 0):.0f} s; "
                  f"held-out greedy accuracy at its end: {'n/a' if acc is None else f'{acc:.3f}'})")
    task = ArithmeticTask.from_options(PRESETS[name].task_options())
    store = RunStore(args.store)
    run_id = store.create_run("demo", {"recipe": recipe, "model": str(model_path), "task": task.describe()},
                              seed=recipe["seed"])
    out = Path(args.out) if args.out else home() / "demo" / run_id
    store.put_metrics(run_id, "run", {"run_dir": str(out)})  # where `selfimprove view` finds the rounds
    console.print(f"run {run_id} · task {task.describe()} · run dir {out}")

    console.rule("2 · inference: greedy versus self-consistency (dev split)")
    t_inference = time.perf_counter()
    backend = HFBackend(str(model_path))
    dev = task.examples("dev")[: recipe["eval_limit"]]
    rows = {}
    with Progress(console=console, transient=True) as progress:
        for strategy in (Greedy(max_tokens=first_cfg.max_tokens),
                         SelfConsistency(n=recipe["sc_n"], temperature=first_cfg.temperature,
                                         max_tokens=first_cfg.max_tokens,
                                         seed=recipe["seed"])):
            traces = run_strategy(backend, task, dev, strategy, store, run_id, progress=progress)
            from ..strategies.base import describe

            rows[describe(strategy)] = m = strategy_metrics(task, dev, traces, seed=recipe["seed"])
            store.put_metrics(run_id, "inference/" + describe(strategy), m)
    print_strategy_table(rows, title=f"{task.describe()} · dev · n={len(dev)}")
    inference_s = time.perf_counter() - t_inference

    summaries, first = {}, None
    for arm in recipe["arms"]:
        freeze_heap()
        console.rule(f"3 · self-improvement: {arm}")
        summaries[arm] = run_loop(configs[arm], task, model_path, out / arm, store=store, run_id=run_id,
                                  log=lambda msg: console.print(msg, markup=False), reuse_start=first,
                                  scope=arm)
        first = first or out / arm  # the arms share one evaluation of the starting model

    from .demo_report import paired_tests, print_rounds, write_page

    print_rounds(out, summaries, ("dev", test, harder))
    tests = paired_tests(out, summaries, test, seed=recipe["seed"])
    store.put_metrics(run_id, "demo/paired", tests)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = time.perf_counter() - t_start
    store.put_metrics(run_id, "demo/resources", {"wall_s": total, "peak_rss_mb": peak_mb,
                                                 "pretrain_s": pretrain_s, "inference_s": inference_s})
    store.set_status(run_id, "done")
    print(f"\nwall time {total:.0f} s (of which model {pretrain_s:.0f} s) · peak memory {peak_mb:.0f} MB")
    print(f"stored as run {run_id} in {store.path}; round models and traces under {out}")
    print(f"inspect: selfimprove runs show {run_id}")
    page = write_page(out / "demo.html", out, summaries, ("dev", test, harder), tests, inference=rows,
                      title=f"selfimprove demo · run {run_id} · {task.describe()}")
    print(f"report: {page}")
    return 0


def freeze_heap() -> None:
    """Take every object alive now out of the garbage collector's view (``gc.freeze``). The imported libraries
    hold ~0.5M objects, and every full collection walked them all (0.2-0.7 s each on 2 cores): TRL's trainer
    asks for one per SFT call and Python makes more as a round allocates its traces. Frozen objects are never
    collected, which costs nothing in this one short process."""
    import gc

    gc.freeze()


if __name__ == "__main__":
    sys.exit(run(argparse.Namespace(recipe=None, out=None, store=None)))
