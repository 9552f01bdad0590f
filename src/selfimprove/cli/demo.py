"""``selfimprove demo``: the whole loop on one model, measured, in minutes on a CPU.

the model (pretrained, converted or reused from the cache) → evaluate greedy and self-consistency → rounds of
self-improvement per arm (the default recipe: two rounds of ``lmsi``, majority-vote pseudo-labels without
gold, beside the no-filter control, training on its own greedy answers, and ``star``, gold-filtered, as the
upper reference) → a table of accuracy per split per round with 95 % CIs, paired tests (exact McNemar, paired
bootstrap) of every arm's last round against the start and of the first arm's against every other arm's, and
where everything is stored.

The dev split drives the patience rule and was used to choose the recipe's learning rate, so the paired tests
run on a held-out split (``test_split``), never on dev.

Settings come from ``recipes/demo.toml`` (or ``--recipe``): the model (any ``--model`` spec with the hf
backend's options, e.g. ``smollm2`` or ``tiny``), the task (any ``--task`` spec; default ``arithmetic``, the
built-in model's own), the arms (training methods) and the ``[loop]`` table of every arm's run config; where
the model is a real one, ``train``'s real-model defaults (``selfimprove.models.training_defaults``) fill what
the recipe leaves out. ``recipes/demo-smollm2.toml`` is a compact version on the built-in real model. Nothing
is tuned per run. If a gain is not significant the demo says so.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError

EPILOG = """examples:
  selfimprove demo                                    # tiny model, recipes/demo.toml
  selfimprove demo --recipe recipes/demo-smollm2.toml # the real model smollm2, one round (~10 min)
  selfimprove demo --recipe my-demo.toml --out runs/demo
"""

DEFAULT_RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "demo.toml"
FALLBACK = {"model": "tiny:max_batch_tokens=131072", "task": "arithmetic", "data": "", "seed": 0,
            "eval_limit": 500, "sc_n": 16,
            "test_split": "test", "arms": ["lmsi", "no-filter", "star"],
            "loop": {"rounds": 2, "n": 8, "temperature": 0.8, "train_limit": 500, "sft": {"max_steps": 80},
                     "patience": 3}}
"""Every recipe key with its value for the default demo (a recipe's keys replace these; ``data`` "" is none;
``sc_n`` 0 leaves out the inference comparison)."""
ALIASES = {"sc_samples": "sc_n"}
"""Older demo recipe keys (the ``[loop]`` table takes ``LoopConfig``'s, aliases included)."""


def register(sub) -> None:
    p = sub.add_parser("demo", help="model → evaluate → self-improve (with its control), measured",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=" ".join(__doc__.split("\n\n")[0].split()))
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
    for key, value in recipe.items():
        want = type(FALLBACK[key])
        if not isinstance(value, want) or isinstance(value, bool) and want is not bool:
            raise UserError(f"expected {want.__name__}, got {value!r:.40}", path=str(path), field=key)
    loop = {**FALLBACK["loop"], **recipe.get("loop", {})}
    for key, table in FALLBACK["loop"].items():  # a recipe's [loop.sft] adds to the fallback's, key by key
        if isinstance(table, dict) and isinstance(recipe.get("loop", {}).get(key), dict):
            loop[key] = {**table, **recipe["loop"][key]}
    return {**FALLBACK, **recipe, "loop": loop}


@dataclass(frozen=True)
class Plan:
    """A demo recipe resolved and validated, before any model is loaded, pretrained or converted."""

    model: str
    """The model's name or path (the spec without its options)."""
    options: dict[str, Any]
    """The hf backend's options from the spec (``smollm2:chat=false`` → ``{"chat": False}``)."""
    task: Any
    """The task (``Task``)."""
    configs: dict[str, Any]
    """Every arm's ``LoopConfig``."""
    splits: tuple[str, ...]
    """Every evaluated split: dev, the paired tests' held-out split, the task's harder splits."""
    defaults: dict[str, Any]
    """``train``'s real-model defaults applied under the recipe's ``[loop]`` (none for a character model)."""


def plan(recipe: dict, where: str | None = None) -> Plan:
    """Resolve and validate ``recipe`` (``load_recipe``): the model spec, the task, every arm's run config and
    the held-out split; ``where`` names the recipe file in errors."""
    from ..models import training_defaults
    from ..tasks import get_task
    from ..training import LoopConfig
    from .train import split_model_spec, task_for_model

    where = where or str(DEFAULT_RECIPE)
    model, options = split_model_spec(recipe["model"])
    if not recipe["arms"] or not all(isinstance(a, str) for a in recipe["arms"]):
        raise UserError("arms must be a list of training method names", path=where, field="arms")
    if recipe["eval_limit"] < 1 or recipe["sc_n"] < 0:
        raise UserError("eval_limit must be >= 1 and sc_n >= 0 (0: no inference comparison)", path=where)
    task = get_task(task_for_model(recipe["task"], model), data=recipe["data"] or None)
    loop = recipe["loop"]
    lora = bool(loop.get("lora") or (loop.get("sft") or {}).get("lora"))
    defaults = training_defaults(model, lora=lora)
    test, harder = recipe["test_split"], tuple(task.extra_eval_splits())
    try:  # every arm's config, validated before the model is pretrained
        configs = {arm: LoopConfig.from_dict({**defaults, **loop, "method": arm, "seed": recipe["seed"],
                                              "eval_limit": recipe["eval_limit"],
                                              "eval_splits": (test, *harder)})
                   for arm in recipe["arms"]}
    except (TypeError, ValueError) as e:
        raise UserError(f"[loop]: {e}", path=where) from None
    first = next(iter(configs.values()))
    if test in (first.dev_split, first.train_split, *harder):
        raise UserError(f"test_split must be a held-out in-range split such as 'test', not {test!r} "
                        f"(dev chose the learning rate and drives patience)", path=where, field="test_split")
    task.examples(test)  # an unknown split is refused here, naming the task's splits
    return Plan(model=model, options=options, task=task, configs=configs,
                splits=(first.dev_split, test, *harder), defaults=defaults)


def check(args) -> None:
    """Validate the recipe as ``run`` does before it loads or pretrains the model (``plan``)."""
    plan(load_recipe(args.recipe), args.recipe)


def run(args) -> int:
    from rich.console import Console

    from ..files import home, weights_sha256
    from ..store.runs import MemoryCache, RunStore
    from ..training import run_loop

    t_start = time.perf_counter()
    recipe = load_recipe(args.recipe)
    p = plan(recipe, args.recipe)
    console = Console(stderr=True)
    model_path, model_s = _model(p, recipe["model"], console)
    store = RunStore(args.store)
    task = p.task
    weights = {"model_weights_sha256": sha} if (sha := weights_sha256(model_path)) else {}
    run_id = store.create_run("demo", {"recipe": recipe, "model": str(model_path), "task": task.describe(),
                                       **weights,
                                       **({"backend_options": p.options} if p.options else {})},
                              seed=recipe["seed"])
    out = Path(args.out) if args.out else home() / "demo" / run_id
    store.put_metrics(run_id, "run", {"run_dir": str(out)})  # where `selfimprove view` finds the rounds
    console.print(f"run {run_id} · task {task.describe()} · run dir {out}")
    if p.defaults:
        console.print("real-model defaults (the recipe's [loop] overrides them): "
                      + ", ".join(f"{k}={v}" for k, v in p.defaults.items()), markup=False)

    t_inference, c_inference = time.perf_counter(), time.process_time()
    start_greedy: dict[str, list] = {}  # the inference table's greedy dev traces: round 0 reuses them
    if recipe["sc_n"]:
        rows, start_greedy = _inference(p, recipe, model_path, store, run_id, console)
    else:
        rows = {}
        console.rule("2 · inference: left out (the recipe's sc_n is 0)")
    inference_s, inference_cpu_s = time.perf_counter() - t_inference, time.process_time() - c_inference

    summaries, first = {}, None
    shared = MemoryCache()  # the arms' round-1 samples from the starting model: drawn once, by the first arm
    for arm, cfg in p.configs.items():
        freeze_heap()
        console.rule(f"3 · self-improvement: {arm}")
        summaries[arm] = run_loop(cfg, task, model_path, out / arm, store=store, run_id=run_id,
                                  log=lambda msg: console.print(msg, markup=False), reuse_start=first,
                                  scope=arm, backend_options=p.options, start_greedy=start_greedy,
                                  shared_samples=shared)
        first = first or out / arm  # the arms share one evaluation of the starting model

    from .demo_report import paired_tests, print_rounds, write_page

    test = recipe["test_split"]
    print_rounds(out, summaries, p.splits)
    tests = paired_tests(out, summaries, test, seed=recipe["seed"])
    store.put_metrics(run_id, "demo/paired", tests)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = time.perf_counter() - t_start
    store.put_metrics(run_id, "demo/resources", {"wall_s": total, "peak_rss_mb": peak_mb,
                                                 "pretrain_s": model_s, "inference_s": inference_s,
                                                 "cpu_s": time.process_time(),  # all threads, since start
                                                 "inference_cpu_s": inference_cpu_s})
    store.set_status(run_id, "done")
    print(f"\nwall time {total:.0f} s (of which model {model_s:.0f} s) · peak memory {peak_mb:.0f} MB")
    print(f"stored as run {run_id} in {store.path}; round models and traces under {out}")
    print(f"inspect: selfimprove runs show {run_id}")
    page = write_page(out / "demo.html", out, summaries, p.splits, tests, inference=rows, test_split=test,
                      title=f"selfimprove demo · run {run_id} · {task.describe()}")
    print(f"report: {page}")
    return 0


def _model(p: Plan, spec: str, console) -> tuple[Path, float]:
    """Section 1: the model's directory (a built-in one pretrained or converted on first use) and the seconds
    that took here; what its ``selfimprove.json`` says about how it was made."""
    from ..models import BUILTIN
    from ..tiny.models import check_task_formats, is_builtin, resolve_model
    from ..tiny.pretrain import read_metadata
    from .validate import check_model_dir

    builtin = is_builtin(p.model) or p.model in BUILTIN
    console.rule(f"1 · the {'built-in ' if builtin else ''}model '{spec}'")
    t0 = time.perf_counter()
    model_path = Path(resolve_model(p.model))
    seconds = time.perf_counter() - t0
    check_model_dir(str(model_path))
    check_task_formats(model_path, p.task)
    meta = read_metadata(model_path) or {}
    if "wall_seconds" in meta:  # pretrained here
        acc = meta.get("dev_greedy_accuracy")
        console.print(f"{model_path}  ({seconds:.0f} s here; pretraining took {meta['wall_seconds']:.0f} s; "
                      f"held-out greedy accuracy at its end: {'n/a' if acc is None else f'{acc:.3f}'})")
    elif "source" in meta:  # converted from a pip-installed file
        src = meta["source"]
        console.print(f"{model_path}  ({seconds:.0f} s here; converted from {src.get('gguf')} of "
                      f"{src.get('wheel')})", markup=False)
    else:
        console.print(f"{model_path}  ({seconds:.0f} s here)", markup=False)
    return model_path, seconds


def _inference(p: Plan, recipe: dict, model_path: Path, store, run_id: str, console
               ) -> tuple[dict, dict[str, list]]:
    """Section 2: greedy against self-consistency (``sc_n`` samples) on the dev split; the table's rows and
    the greedy traces by split (round 0's evaluation of dev is the same greedy pass: the loop reuses them)."""
    from rich.progress import Progress

    from ..backends.hf import HFBackend
    from ..runner import run_strategy, strategy_metrics
    from ..strategies.base import describe
    from ..strategies.sample import Greedy
    from ..strategies.self_consistency import SelfConsistency
    from .tables import print_strategy_table

    cfg, task = next(iter(p.configs.values())), p.task
    console.rule(f"2 · inference: greedy versus self-consistency ({cfg.dev_split} split)")
    backend = HFBackend(str(model_path), **p.options)
    dev = task.examples(cfg.dev_split)[: recipe["eval_limit"]]
    rows, greedy = {}, {}
    with Progress(console=console, transient=True) as progress:
        for strategy in (Greedy(max_tokens=cfg.max_tokens),
                         SelfConsistency(n=recipe["sc_n"], temperature=cfg.temperature,
                                         max_tokens=cfg.max_tokens, seed=recipe["seed"])):
            # big calls fill the backend's decoding batches (run_strategy's default of 16 examples decoded
            # greedy in 16-row batches, 4x the CPU per token of a full one); greedy's one call is exactly
            # round 0's evaluation of the dev split, which takes its traces instead of decoding again
            chunk = len(dev) if isinstance(strategy, Greedy) else max(16, -(-len(dev) // 4))
            traces = run_strategy(backend, task, dev, strategy, store, run_id, chunk=chunk, progress=progress)
            rows[describe(strategy)] = m = strategy_metrics(task, dev, traces, seed=recipe["seed"])
            store.put_metrics(run_id, "inference/" + describe(strategy), m)
            if isinstance(strategy, Greedy):
                greedy[cfg.dev_split] = traces
    print_strategy_table(rows, title=f"{task.describe()} · {cfg.dev_split} · n={len(dev)}")
    return rows, greedy


def freeze_heap() -> None:
    """Take every object alive now out of the garbage collector's view (``gc.freeze``). The imported libraries
    hold ~0.5M objects, and every full collection walked them all (0.2-0.7 s each on 2 cores): TRL's trainer
    asks for one per SFT call and Python makes more as a round allocates its traces. Frozen objects are never
    collected, which costs nothing in this one short process."""
    import gc

    gc.freeze()


if __name__ == "__main__":
    sys.exit(run(argparse.Namespace(recipe=None, out=None, store=None)))
