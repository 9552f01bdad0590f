"""``selfimprove train``: rounds of generate -> verify/vote/judge -> build -> SFT or DPO (TRL) -> evaluate,
resumable, for any training method (``selfimprove ls methods``)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EXIT_INCOMPLETE, RunIncomplete, UserError
from .tables import print_round_table

if TYPE_CHECKING:
    from ..training.config import LoopConfig

EPILOG = """examples:
  selfimprove train --model tiny --task arithmetic --method lmsi --rounds 2
  selfimprove train --model tiny --task arithmetic --method star --rounds 3 --n 8 --patience 2
  selfimprove train --model tiny --task arithmetic --method easy-to-hard --rounds 3   # terms=6, 7, 8
  selfimprove train --model tiny --task arithmetic --method no-filter --rounds 2      # the control
  selfimprove train --model tiny --task arithmetic --method scpo --rounds 3           # DPO on vote pairs
  selfimprove train --model tiny --task arithmetic --method self-rewarding --judge ptrue \\
      --dpo-loss-type sigmoid
  selfimprove train --model Qwen/Qwen2.5-0.5B-Instruct --task gsm8k --data gsm8k/ --method rest-em \\
      --sft-lr 1e-4 --lora --max-tokens 320 --train-limit 500 --eval-limit 200 \\
      --trl-args gradient_accumulation_steps=4
  selfimprove train --recipe recipes/scpo.toml   # a preset: model, task and settings (flags override it)
  selfimprove train --resume RUN_DIR_OR_ID     # continue after a crash: no round's data lost or repeated
  selfimprove train --resume RUN_DIR_OR_ID --rounds 3   # add rounds to a finished 2-round run

Each round r is saved as RUN_DIR/round-<r>/, a Hugging Face model dir you can pass back to --model.
Every flag is a setting of the run config; a recipe sets the same names (nested: [sft], [dpo], [guards]).
Older names are aliases: --k = --n, --lr = --sft-lr, --beta/--loss-type/--loss-weights = --dpo-*,
--guard-limit/--guard-k = --guards-limit/--guards-n, --bon-n = --eval-n, --rationalize-k = --rationalize-n.

exit status: 0 done · 2 bad input (nothing run) · 3 incomplete: a round's generation lost more than 5 % of
its requests (past their retries), so no data was built from it; `--resume` generates that round again.
"""


def register(sub) -> None:
    from .options import add_loop_arguments

    p = sub.add_parser("train", help="self-training rounds (STaR, ReST-EM, LMSI, easy-to-hard, no-filter; "
                       "DPO: self-rewarding, scpo, spin, gold-dpo, v-star, cct)",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--recipe", metavar="TOML", help="preset file (recipes/*.toml): model, task and config "
                   "fields; flags given on the command line override it")
    p.add_argument("--model", help="tiny | micro | smollm2 | HF model dir | hub id (the starting "
                   "policy); the hf backend's options after a colon, as eval takes them: smollm2:chat=false")
    p.add_argument("--task", help="arithmetic | gsm8k | jsonl ... with :key=value options")
    p.add_argument("--data", help="data file or folder for file-backed tasks")
    p.add_argument("--out", metavar="DIR", help="run directory (default: $SELFIMPROVE_HOME/train/<run id>)")
    p.add_argument("--store", help="run store SQLite file (default: $SELFIMPROVE_HOME/runs.db)")
    p.add_argument("--resume", metavar="RUN_DIR_OR_ID", help="continue a run from its directory or store id "
                   "(its stored config decides: a flag that contradicts it is refused; --rounds may add "
                   "rounds)")
    p.add_argument("--reuse-start", metavar="RUN_DIR", help="copy round 0's evaluation from this run when it "
                   "evaluated the same model, task, examples and settings (arms of one comparison), else "
                   "evaluate round 0 as usual")
    add_loop_arguments(p)
    p.set_defaults(func=run)


def build_config(args, task, recipe: dict | None = None) -> LoopConfig:
    """The LoopConfig from a recipe's values and the flags (flags win), validated; task-aware defaults for the
    splits (arithmetic: test-hard, and terms=K+1... for easy-to-hard)."""
    from ..training.config import LoopConfig, nest
    from .options import loop_values

    values = {**(recipe or {}), **loop_values(args)}
    try:
        nested = nest(values)
        method = nested["method"]
        e2h = method.get("name") == "easy-to-hard"
        rounds = nested.get("rounds", LoopConfig.rounds)
        if e2h and not method.get("difficulty_splits") and task.harder_splits(rounds):
            method["difficulty_splits"] = task.harder_splits(rounds)  # arithmetic: one more term per round
        if "eval_splits" not in nested and task.extra_eval_splits() and not e2h:  # e2h: its own splits
            nested["eval_splits"] = task.extra_eval_splits()
        try:
            check_nested_types(nested, where=getattr(args, "recipe", None))
        except UserError as e:  # name the setting by its flags (older names included)
            from .options import flag_of

            if e.field is not None:
                e.field = flag_of(e.field)
            raise
        cfg = LoopConfig.from_dict(nested)
        for settings, trl_class in ((cfg.sft, "SFTConfig"), (cfg.dpo, "DPOConfig")):
            if settings.trl_args:  # TRL is a heavy import: only when there is something to check
                settings.check_trl_args(_trl_config(trl_class))
        return cfg
    except (TypeError, ValueError) as e:
        from .options import flags_in

        raise UserError(flags_in(str(e)), path=getattr(args, "recipe", None)) from None


def check_nested_types(nested: dict, where: str | None) -> None:
    """Refuse a value whose type does not fit its setting (a recipe's ``rounds = "two"``), naming it."""
    from ..specs import check_types
    from ..training.config import GuardSettings, LoopConfig
    from ..training.methods import get_method
    from ..training.settings import DPOSettings, SFTSettings

    check_types(LoopConfig, {k: v for k, v in nested.items() if not isinstance(v, dict)}, where=where)
    for key, cls in (("sft", SFTSettings), ("dpo", DPOSettings), ("guards", GuardSettings)):
        check_types(cls, nested.get(key, {}), where=where, prefix=f"{key}.")
    options = {k: v for k, v in nested["method"].items() if k != "name"}
    try:
        method_cls = type(get_method(nested["method"].get("name", "lmsi"), **(
            {"difficulty_splits": ("x",)} if nested["method"].get("name") == "easy-to-hard" else {})))
    except (TypeError, ValueError):
        return  # an unknown method or setting: LoopConfig.from_dict says which
    check_types(method_cls, options, where=where)


def _trl_config(name: str):
    import trl

    return getattr(trl, name)


def run(args) -> int:
    from ..store.runs import RunStore

    store = RunStore(args.store)
    try:
        return _run(args, store)
    finally:
        store.close()  # releases the run's lock


def _run(args, store) -> int:
    from ..tasks import get_task
    from ..tiny.models import check_task_formats
    from ..training.config import LoopConfig
    from ..training.loop import run_loop
    from .train_resume import add_rounds, check_resume_flags, find_run

    if getattr(args, "reuse_start", None) and not Path(args.reuse_start).is_dir():
        raise UserError("no such run directory", field="--reuse-start", path=args.reuse_start)
    if args.resume:
        run_dir, saved = find_run(args.resume, store)
        try:
            cfg = LoopConfig.from_dict(saved["loop"], strict=False)
        except (TypeError, ValueError) as e:
            raise UserError(f"cannot read the run's saved config: {e}",
                            path=str(run_dir / "config.json")) from None
        more = check_resume_flags(args, cfg)
        task = get_task(saved["task"], data=saved.get("data"))
        model_path, run_id = saved["model_path"], saved.get("run_id")
        options = saved.get("backend_options") or {}
        check_task_formats(model_path, task)
        if run_id:
            store.lock_run(run_id)
        if more:
            cfg = add_rounds(run_dir, saved, cfg, more, store)
        if run_id:
            store.set_status(run_id, "running")
    else:
        run_dir, cfg, task, model_path, run_id, options = _new_run(args, store)
    print(f"run {run_id} · {cfg.method.name} · {cfg.rounds} round(s) · dir {run_dir}", flush=True)
    try:
        summary = run_loop(cfg, task, model_path, run_dir, store=store, run_id=run_id,
                           reuse_start=getattr(args, "reuse_start", None), backend_options=options)
    except RunIncomplete as e:  # a round lost too many requests: stored 'incomplete', resumable
        if run_id:
            store.set_status(run_id, "incomplete")
        print(f"selfimprove: incomplete: {e} (`selfimprove train --resume {run_id or run_dir}`)",
              file=sys.stderr)
        return EXIT_INCOMPLETE
    except UserError:
        if run_id and not args.resume and not (Path(run_dir) / "state.json").exists():
            _discard(store, run_id, Path(run_dir))  # refused before any work: leave no run behind
        elif run_id:
            store.set_status(run_id, "failed")
        raise
    except BaseException:
        if run_id:
            store.set_status(run_id, "failed")  # `--resume` picks it up again
        raise
    if run_id:
        store.put_metrics(run_id, "summary", summary)
        store.set_status(run_id, "done")
    print_round_table(run_dir)
    print(f"best round {summary['best_round']} · final model {summary['final_model']}"
          + (f" · stopped early: {summary['stopped']}" if summary["stopped"] else ""))
    return 0


def check(args) -> None:
    """Validate a new run's flags and recipe as ``run`` does before its first expensive step (``plan_run``),
    loading no model. A ``--resume`` is checked against its stored config when it runs."""
    if not args.resume:
        plan_run(args)


def plan_run(args) -> tuple[str, dict, str, object, LoopConfig]:
    """Resolve a new run's recipe, model spec, task and config, all validated before any model is loaded,
    pretrained or converted: ``(model, backend options, task spec, task, config)``. Fills ``args.model``,
    ``args.task`` and ``args.data`` from the recipe where the flags leave them out."""
    from ..tasks import get_task

    recipe = _load_recipe(args.recipe) if args.recipe else {}
    for key in ("model", "task", "data"):
        value = recipe.pop(key, None)
        if value is not None and not isinstance(value, str):
            raise UserError(f"expected a string, got {type(value).__name__} {value!r:.40}", path=args.recipe,
                            field=key)
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not args.model or not args.task:
        raise UserError("train needs --model and --task (or --recipe FILE, or --resume RUN_DIR_OR_ID)")
    model, options = split_model_spec(args.model)
    task_spec = task_for_model(args.task, model)
    task = get_task(task_spec, data=args.data)
    recipe = {**_model_defaults(model, args, recipe), **recipe}  # flat defaults first: recipe, flags win
    return model, options, task_spec, task, build_config(args, task, recipe)


def _new_run(args, store):
    """Plan the run (``plan_run``), then resolve the model; create the run in the store and its directory
    with config.json."""
    from ..files import home, weights_sha256
    from ..tiny.models import check_task_formats
    from ..training.rundir import RunDir
    from .validate import check_model_dir

    model, options, task_spec, task, cfg = plan_run(args)
    _check_out(Path(args.out) if args.out else home() / "train")
    model_path = _resolve_model(model)  # may pretrain a built-in model: after every check
    check_model_dir(str(model_path))
    check_task_formats(model_path, task)
    saved = {"command": "train", "model": args.model, "model_path": str(model_path), "task": task_spec,
             "data": args.data, "backend_options": options, "loop": cfg.to_dict(), "versions": _versions()}
    if sha := weights_sha256(model_path):  # which checkpoint: a preset's fingerprint names only its config
        saved["model_weights_sha256"] = sha
    run_id = store.create_run("train", saved, seed=cfg.seed)
    store.lock_run(run_id)
    run_dir = Path(args.out) if args.out else home() / "train" / run_id
    saved.update(run_id=run_id, run_dir=str(run_dir))
    RunDir(run_dir).write_json("config.json", saved)
    store.put_metrics(run_id, "run", {"run_dir": str(run_dir)})
    return run_dir, cfg, task, model_path, run_id, options


def split_model_spec(spec: str) -> tuple[str, dict]:
    """``smollm2:chat=false`` → ``('smollm2', {'chat': False})``: the model to train and the hf backend's
    options, written as ``eval --model`` takes them (chat, dtype, device, max_batch_tokens). Every round's
    model is generated and evaluated with them, and ``chat`` also decides how the trainers format their
    rows."""
    from ..backends import hf_options

    return hf_options(spec)  # an unknown option is refused, naming the known ones


def _model_defaults(model: str, args, recipe: dict) -> dict:
    """Training defaults for a real model (``models.training_defaults``: learning rates, new tokens, batch),
    which a recipe or a flag overrides; none for the built-in character models. Read without resolving the
    model (a built-in one may need pretraining or conversion first)."""
    from ..models import training_defaults
    from .options import loop_values

    given = {**recipe, **loop_values(args)}
    sft = given.get("sft") if isinstance(given.get("sft"), dict) else {}
    defaults = training_defaults(model,
                                 lora=bool(given.get("lora") or given.get("sft.lora") or sft.get("lora")))
    if defaults:
        print("real-model defaults (a recipe or flag overrides them): "
              + ", ".join(f"{k}={v}" for k, v in defaults.items()), flush=True)
    return defaults


def _discard(store, run_id: str, run_dir: Path) -> None:
    """Remove a run refused before its first phase: its store rows, its config.json, its empty directory."""
    store.delete_run(run_id)
    (run_dir / "config.json").unlink(missing_ok=True)
    try:
        run_dir.rmdir()
    except OSError:
        pass  # not empty (a user's --out folder): leave it


def _check_out(run_dir: Path) -> None:
    """Refuse, before the run exists, a run directory that is a file, holds a run, or cannot be created."""
    import os

    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir} is a file; --out needs a directory", field="--out")
    if (run_dir / "state.json").exists():
        raise UserError(f"{run_dir} already holds a run; use --resume {run_dir} or another --out",
                        field="--out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {run_dir}: {e.strerror or e}", field="--out") from None
    if not os.access(run_dir, os.W_OK):
        raise UserError(f"{run_dir} is not writable", field="--out")


def task_for_model(spec: str, model) -> str:
    """``arithmetic`` without terms/digits options, on a built-in model, becomes the arithmetic task that
    model was pretrained for, so ``--model tiny --task arithmetic`` just works. Read from the preset of a
    built-in name (nothing is pretrained to find it) or from a model dir's ``selfimprove.json``."""
    import json

    name, _, rest = spec.partition(":")
    if name != "arithmetic" or "terms=" in rest or "digits=" in rest:
        return spec
    try:
        from ..tiny.config import PRESETS

        if str(model) in PRESETS:
            config = dataclasses.asdict(PRESETS[str(model)])
        else:
            config = json.loads((Path(model) / "selfimprove.json").read_text())["config"]
        terms, digits = config["terms"], config["digits"]
        options = f"terms={terms[0]}-{terms[1]},digits={digits[0]}-{digits[1]}"
        if config.get("verify_format", 1) != 1 and "verify=" not in rest:  # the formats it learned
            options += f",verify={config['verify_format']}"
    except (ImportError, OSError, ValueError, KeyError, TypeError, IndexError):
        return spec
    return f"arithmetic:{options}" + (f",{rest}" if rest else "")


def _load_recipe(path: str) -> dict:
    """A recipe's top-level table (TOML)."""
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise UserError(f"cannot read the recipe: {e.strerror}", path=path) from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"not valid TOML: {e}", path=path) from None
    except UnicodeDecodeError as e:
        raise UserError(f"not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})",
                        path=path) from None


def _resolve_model(spec: str) -> Path | str:
    try:
        from ..tiny import resolve_model
    except ImportError:
        try:
            from ..tiny.models import resolve_model
        except ImportError:
            resolve_model = None
    if resolve_model is not None:
        return resolve_model(spec)
    if spec in ("tiny", "micro"):
        raise UserError(f"--model {spec} needs the built-in model (selfimprove.tiny), which is not available")
    return spec


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("selfimprove", "torch", "transformers", "trl", "peft"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "missing"
    return out
