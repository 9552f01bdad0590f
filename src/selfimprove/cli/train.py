"""``selfimprove train``: rounds of generate -> verify/vote -> keep -> SFT or DPO (TRL) -> evaluate, resumable."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EXIT_INCOMPLETE, RunIncomplete, UserError
from ..specs import check_types

if TYPE_CHECKING:
    from ..training.config import LoopConfig

EPILOG = """examples:
  selfimprove train --model tiny --task arithmetic --method lmsi --rounds 2
  selfimprove train --model tiny --task arithmetic --method star --rounds 3 --k 8 --patience 2
  selfimprove train --model tiny --task arithmetic --method easy-to-hard --rounds 3   # terms=6, 7, 8
  selfimprove train --model tiny --task arithmetic --method no-filter --rounds 2      # the control
  selfimprove train --model tiny --task arithmetic --method scpo --rounds 3           # DPO on vote pairs
  selfimprove train --model tiny --task arithmetic --method self-rewarding --judge ptrue --loss-type sigmoid
  selfimprove train --model Qwen/Qwen2.5-0.5B-Instruct --task gsm8k --data gsm8k/ --method rest-em \\
      --lr 1e-4 --lora --max-tokens 320 --train-limit 500 --eval-limit 200
  selfimprove train --recipe recipes/scpo.toml   # a preset: model, task and settings (flags override it)
  selfimprove train --resume RUN_DIR_OR_ID     # continue after a crash: no round's data lost or repeated

Each round r is saved as RUN_DIR/round-<r>/, a Hugging Face model dir you can pass back to --model.

exit status: 0 done · 2 bad input (nothing run) · 3 incomplete: a round's generation lost more than 5 % of
its requests (past their retries), so no data was built from it; `--resume` generates that round again.
"""

# CLI flag -> LoopConfig field, for the flags that map one to one.
_FIELDS = ("method", "rounds", "k", "temperature", "top_p", "max_tokens", "threshold", "max_per_example",
           "train_split", "train_limit", "dev_split", "eval_limit", "lr", "epochs", "batch_size", "max_steps",
           "max_length", "scheduler", "lora_r", "seed", "patience", "min_delta", "replay", "device",
           "rationalize_k", "target_suffix")


def register(sub) -> None:
    from ..training.methods import METHODS
    from ..training.pref_loop import PREF_METHODS

    p = sub.add_parser("train", help="self-training rounds (STaR, ReST-EM, LMSI, easy-to-hard, no-filter; "
                       "DPO: self-rewarding, scpo, spin, gold-dpo, v-star, cct)",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=__doc__.splitlines()[0])
    p.add_argument("--recipe", metavar="TOML", help="preset file (recipes/*.toml): model, task and config "
                   "fields; flags given on the command line override it")
    p.add_argument("--model", help="tiny | micro | HF model dir | hub id (the starting policy)")
    p.add_argument("--task", help="arithmetic | gsm8k | jsonl ... with :key=value options")
    p.add_argument("--data", help="data file or folder for file-backed tasks")
    p.add_argument("--method", choices=(*METHODS, *PREF_METHODS), help="selection rule (default: lmsi)")
    p.add_argument("--rounds", type=int, help="rounds after round 0 (default: 2)")
    g = p.add_argument_group("sampling and selection")
    g.add_argument("--k", type=int, help="samples per training example (default: 8)")
    g.add_argument("--temperature", type=float, help="sampling temperature (default: 0.8)")
    g.add_argument("--top-p", type=float, help="nucleus mass (default: 1.0)")
    g.add_argument("--max-tokens", type=int, help="generation cap per completion (default: 128)")
    g.add_argument("--threshold", type=float, help="min majority vote share to keep a pseudo-label (0.5)")
    g.add_argument("--max-per-example", type=int, help="cap on kept completions per example (default: 4)")
    g.add_argument("--no-rationalize", action="store_true", help="star: skip rationalisation")
    g.add_argument("--rationalize-k", type=int, help="star: completions per hinted prompt (default: 1)")
    g.add_argument("--target-suffix", help="text appended to each training target before EOS (default: '')")
    g.add_argument("--difficulty-splits", nargs="+", metavar="SPLIT",
                   help="easy-to-hard: splits one step harder each (default for arithmetic: terms=6 7 ...)")
    g.add_argument("--replay", type=float, help="easy-to-hard: replayed rows per new row (default: 1.0)")
    d = p.add_argument_group("data and evaluation")
    d.add_argument("--train-split", help="split to self-label (default: train)")
    d.add_argument("--train-limit", type=int, help="examples per round (default: 128)")
    d.add_argument("--dev-split", help="split for the patience rule (default: dev)")
    d.add_argument("--eval-splits", nargs="+", metavar="SPLIT",
                   help="harder splits evaluated every round (default for arithmetic: test-hard)")
    d.add_argument("--eval-limit", type=int, help="examples per evaluated split (default: 100)")
    t = p.add_argument_group("training (TRL SFTTrainer)")
    t.add_argument("--lr", type=float, help="learning rate (default 3e-5, for the tiny model; ~1e-5 full / 1e-4 LoRA for real LMs)")
    t.add_argument("--epochs", type=float, help="passes over a round's rows (default: 2)")
    t.add_argument("--batch-size", type=int, help="rows per step (default: 16)")
    t.add_argument("--max-steps", type=int, help="cap on steps per round, -1 for none (default: 40)")
    t.add_argument("--max-length", type=int, help="tokens per training row (default: 512)")
    t.add_argument("--scheduler", help="constant | linear | cosine | constant_with_warmup")
    t.add_argument("--lora", action="store_true", help="train LoRA adapters (merged into each round's model)")
    t.add_argument("--lora-r", type=int, help="LoRA rank (default: 8)")
    t.add_argument("--device", help="generation device: auto | cpu | cuda (default: auto)")
    add_pref_arguments(p.add_argument_group("preference methods (TRL DPOTrainer)"))
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, help="seed (default: 0)")
    r.add_argument("--patience", type=int, help="stop after N rounds without dev gain (default: 2; 0: never)")
    r.add_argument("--min-delta", type=float, help="dev gain that counts as improvement (default: 0)")
    r.add_argument("--out", metavar="DIR", help="run directory (default: $SELFIMPROVE_HOME/train/<run id>)")
    r.add_argument("--store", help="run store SQLite file (default: $SELFIMPROVE_HOME/runs.db)")
    r.add_argument("--resume", metavar="RUN_DIR_OR_ID", help="continue a run from its directory or store id "
                   "(its stored config decides: a flag that contradicts it is refused)")
    p.set_defaults(func=run)


def build_config(args, task, recipe: dict | None = None) -> LoopConfig:
    """The LoopConfig from a recipe's fields and the flags (flags win); task-aware defaults for the splits
    (arithmetic: test-hard, terms=K+1...)."""
    from ..training.config import LoopConfig
    from ..training.pref_loop import PREF_FIELDS, PREF_METHODS, PrefConfig

    values = dict(recipe or {})
    flags = {f: getattr(args, f) for f in _FIELDS if getattr(args, f, None) is not None}
    values.update(flags)
    pref = values.get("method") in PREF_METHODS
    flags.update({f: getattr(args, f) for f in PREF_FIELDS if pref and getattr(args, f, None) is not None})
    values.update(flags)
    check_types(PrefConfig if pref else LoopConfig, flags, prefix="--")
    known = {f.name for f in dataclasses.fields(PrefConfig if pref else LoopConfig)}
    if unknown := sorted(set(values) - known):
        raise UserError(f"unknown setting(s) {', '.join(unknown)} for --method {values.get('method', 'lmsi')}",
                        path=getattr(args, "recipe", None))
    check_types(PrefConfig if pref else LoopConfig, {k: v for k, v in (recipe or {}).items() if k not in flags},
                where=getattr(args, "recipe", None))
    if values.get("patience") == 0:
        values["patience"] = None
    if args.no_rationalize:
        values["rationalize"] = False
    if args.lora:
        values["lora"] = True
    rounds = values.get("rounds", LoopConfig.rounds)
    e2h = values.get("method") == "easy-to-hard"
    if args.difficulty_splits:
        values["difficulty_splits"] = tuple(args.difficulty_splits)
    elif e2h and task.harder_splits(rounds):  # arithmetic: one more term per round beyond the range
        values["difficulty_splits"] = task.harder_splits(rounds)
    if args.eval_splits:
        values["eval_splits"] = tuple(args.eval_splits)
    elif "eval_splits" not in values and task.extra_eval_splits() and not e2h:  # e2h evaluates its own splits
        values["eval_splits"] = task.extra_eval_splits()
    try:
        return PrefConfig(**values) if pref else LoopConfig(**values)
    except (TypeError, ValueError) as e:
        msg = str(e).replace("LoopConfig.", "--").replace("PrefConfig.", "--")
        raise UserError(msg.replace("_", "-")) from None


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
    from ..training.pref_loop import PREF_METHODS, PrefConfig, run_pref_loop

    if args.resume:
        run_dir, saved = _find_run(args.resume, store)
        cls = PrefConfig if saved["loop"].get("method") in PREF_METHODS else LoopConfig
        _check_resume_flags(args, saved)
        cfg = cls.from_dict(saved["loop"])
        task = get_task(saved["task"], data=saved.get("data"))
        model_path, run_id = saved["model_path"], saved.get("run_id")
        check_task_formats(model_path, task)
        if run_id:
            store.lock_run(run_id)
            store.set_status(run_id, "running")
    else:
        run_dir, cfg, task, model_path, run_id = _new_run(args, store)
    print(f"run {run_id} · {cfg.method} · {cfg.rounds} round(s) · dir {run_dir}", flush=True)
    try:
        runner = run_pref_loop if isinstance(cfg, PrefConfig) else run_loop
        summary = runner(cfg, task, model_path, run_dir, store=store, run_id=run_id)
    except RunIncomplete as e:  # a round lost too many requests: stored 'incomplete', resumable
        if run_id:
            store.set_status(run_id, "incomplete")
        print(f"selfimprove: incomplete: {e} (`selfimprove train --resume {run_id or run_dir}`)", file=sys.stderr)
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
    _print_table(run_dir, cfg)
    print(f"best round {summary['best_round']} · final model {summary['final_model']}"
          + (f" · stopped early: {summary['stopped']}" if summary["stopped"] else ""))
    return 0


def _new_run(args, store):
    """Resolve recipe, model and task; create the run in the store and its directory with config.json."""
    from ..files import home
    from ..tasks import get_task
    from ..tiny.models import check_task_formats
    from ..training.rundir import RunDir
    from .validate import check_model_dir

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
    # flags, recipe and --out are refused before the model resolves (a built-in model may pretrain first)
    build_config(args, get_task(args.task, data=args.data), dict(recipe))
    _check_out(Path(args.out) if args.out else home() / "train")
    model_path = _resolve_model(args.model)
    check_model_dir(str(model_path))
    task_spec = task_for_model(args.task, model_path)
    task = get_task(task_spec, data=args.data)
    check_task_formats(model_path, task)
    recipe = {**_model_defaults(model_path, args, recipe), **recipe}
    cfg = build_config(args, task, recipe)
    saved = {"command": "train", "model": args.model, "model_path": str(model_path), "task": task_spec,
             "data": args.data, "loop": cfg.to_dict(), "versions": _versions()}
    run_id = store.create_run("train", saved, seed=cfg.seed)
    store.lock_run(run_id)
    run_dir = Path(args.out) if args.out else home() / "train" / run_id
    saved.update(run_id=run_id, run_dir=str(run_dir))
    RunDir(run_dir).write_json("config.json", saved)
    store.put_metrics(run_id, "run", {"run_dir": str(run_dir)})
    return run_dir, cfg, task, model_path, run_id


def _model_defaults(model_path, args, recipe: dict) -> dict:
    """Training defaults for a real model (``models.training_defaults``: learning rate, new tokens, batch),
    which a recipe or a flag overrides; none for the built-in character models."""
    from ..models import training_defaults
    from ..training.pref_loop import PREF_METHODS

    defaults = training_defaults(model_path, lora=bool(args.lora or recipe.get("lora")))
    if (getattr(args, "method", None) or recipe.get("method")) not in PREF_METHODS:
        defaults.pop("dpo_lr", None)
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
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir} is a file; --out needs a directory", field="--out")
    if (run_dir / "state.json").exists():
        raise UserError(f"{run_dir} already holds a run; use --resume {run_dir} or another --out", field="--out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {run_dir}: {e.strerror or e}", field="--out") from None
    import os

    if not os.access(run_dir, os.W_OK):
        raise UserError(f"{run_dir} is not writable", field="--out")


def _check_resume_flags(args, saved: dict) -> None:
    """Refuse flags that contradict the run being resumed, naming the flag (the stored config decides)."""
    given = {f: getattr(args, f) for f in _FIELDS if getattr(args, f, None) is not None}
    for key in ("model", "task", "data", "recipe", "out"):
        if getattr(args, key, None) is not None:
            raise UserError(f"--{key} cannot change a run being resumed (it is read from the run's config); "
                            "drop it, or start a new run", field=f"--{key}")
    for key, value in given.items():
        stored = saved["loop"].get(key)
        if isinstance(stored, list):
            stored = tuple(stored)
        if value != stored and not (key == "patience" and value == 0 and stored is None):
            flag = "--" + key.replace("_", "-")
            raise UserError(f"{flag} {value!r} contradicts the run being resumed, which has {stored!r}; drop the "
                            "flag to resume, or start a new run", field=flag)


def task_for_model(spec: str, model_path) -> str:
    """``arithmetic`` without terms/digits options, on a built-in model, becomes the arithmetic task that model
    was pretrained for (read from its ``selfimprove.json``), so ``--model tiny --task arithmetic`` just works."""
    import json

    name, _, rest = spec.partition(":")
    if name != "arithmetic" or "terms=" in rest or "digits=" in rest:
        return spec
    try:
        config = json.loads((Path(model_path) / "selfimprove.json").read_text())["config"]
        options = f"terms={config['terms'][0]}-{config['terms'][1]},digits={config['digits'][0]}-{config['digits'][1]}"
        if config.get("verify_format", 1) != 1 and "verify=" not in rest:  # the formats it learned
            options += f",verify={config['verify_format']}"
    except (OSError, ValueError, KeyError, TypeError, IndexError):
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
        raise UserError(f"not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})", path=path) from None


def _find_run(ref: str, store) -> tuple[Path, dict]:
    """A run directory from a path or a store id; its saved config."""
    import json

    path = Path(ref)
    if not (path / "config.json").exists():
        run = store.get_run(ref)  # raises a UserError naming the store when unknown
        if run["command"] != "train":
            raise UserError(f"run {ref} is a '{run['command']}' run; continue it with `selfimprove "
                            f"{run['command']} --resume {ref}`", field="--resume")
        path = Path(run["config"].get("run_dir") or store.metrics(ref).get("run", {}).get("run_dir", ""))
        if not (path / "config.json").exists():
            raise UserError(f"run {ref}'s directory {path} has no config.json; cannot resume it")
    with (path / "config.json").open(encoding="utf-8") as f:
        return path, json.load(f)


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


def _print_table(run_dir: Path, cfg) -> None:
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


def add_pref_arguments(group) -> None:
    """The ``selfimprove train`` flags of the preference methods (defaults are PrefConfig's)."""
    from ..training.pref_loop import JUDGES

    group.add_argument("--judge", choices=JUDGES, help="self-judge for self-rewarding and the guards (ptrue)")
    group.add_argument("--meta-judge", action="store_const", const=True, help="self-rewarding: Meta-Rewarding "
                       "judge pairs (needs --judge rubric)")
    group.add_argument("--min-gap", type=float, help="self-rewarding: minimum judge-score gap of a pair (0)")
    group.add_argument("--include-unparseable", action="store_const", const=True,
                       help="scpo: unparseable samples may be the rejected response")
    group.add_argument("--dpo-lr", type=float, help="DPO learning rate (default 1e-5, for the tiny model)")
    group.add_argument("--beta", type=float, help="DPO beta (default 0.1)")
    group.add_argument("--loss-type", nargs="+", metavar="TYPE",
                       help="TRL DPO loss types, e.g. sigmoid (plain DPO) or sigmoid sft (default)")
    group.add_argument("--loss-weights", nargs="+", type=float, metavar="W", help="one weight per loss type")
    group.add_argument("--verifier-score", choices=("logratio", "likelihood"), help="v-star verifier score")
    group.add_argument("--bon-n", type=int, help="v-star: best-of-n samples at evaluation (default 8)")
    group.add_argument("--guard-limit", type=int, help="dev examples the guards probe per round (32; 0: off)")
    group.add_argument("--guard-k", type=int, help="samples per probed example (default 4)")
    group.add_argument("--eval-correction", action="store_const", const=True,
                       help="measure CL/CS of self-correction every round (cct always does)")
