"""``selfimprove eval``: run strategies on a task and compare them in one table (one row per strategy)."""

from __future__ import annotations

import argparse

from ..errors import EXIT_INCOMPLETE, UserError
from ..files import check_output_file

EPILOG = """examples:
  selfimprove eval --model scripted --task arithmetic --limit 50 --strategy greedy \\
      --strategy self-consistency:n=8,temperature=0.8
  selfimprove eval --model tiny --task arithmetic --strategy greedy --strategy self-consistency:n=16
  selfimprove eval --model Qwen/Qwen2.5-0.5B-Instruct --task gsm8k --data gsm8k/test.jsonl --limit 100 \\
      --strategy greedy
  selfimprove eval --resume 20261123-101500-ab12cd     # continue an interrupted or incomplete run
  selfimprove eval --resume 20261123-101500-ab12cd --limit 100   # add examples: only the new ones run

exit status: 0 done · 2 bad input (nothing run) · 3 incomplete: some requests failed past their retries;
they are counted under 'errors' (never as answers) and `--resume RUN_ID` retries exactly those examples.
"""


def register(sub) -> None:
    from .validate import positive_int

    p = sub.add_parser("eval", help="evaluate strategies on a task", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="tiny | tiny-verify | micro | smollm2 | scripted | PATH | hub id | "
                   "vllm:PATH | openai:URL[@MODEL][,timeout=S,retries=N,connect_timeout=S,"
                   "read_timeout=S,total_timeout=S] "
                   "(or SELFIMPROVE_TIMEOUT, SELFIMPROVE_RETRIES, ... in the environment); hf models take "
                   "options, e.g. smollm2:chat=false")
    p.add_argument("--task",
                   help="arithmetic | gsm8k | multiple-choice | boolq | jsonl, with :key=value options")
    p.add_argument("--data", help="data file or folder for file-backed tasks")
    p.add_argument("--split", help="split name (default: test)")
    p.add_argument("--limit", type=positive_int, help="first N examples only (N >= 1)")
    p.add_argument("--strategy", action="append", help="NAME[:key=value,...]; repeatable (default: greedy)")
    p.add_argument("--seed", type=int, help="seed for bootstrap CIs (default: 0)")
    p.add_argument("--chunk", type=positive_int,
                   help="examples per batch and per stored transaction (default: 16)")
    p.add_argument("--store", help="run store SQLite file (default: $SELFIMPROVE_HOME/runs.db)")
    p.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted or incomplete run with "
                   "its stored config; other flags must agree with it, except --model may differ in "
                   "credentials and deadline options (timeout=, retries=, ...), which are never part of a "
                   "run's identity, and a larger --limit adds examples (only the new ones run)")
    p.add_argument("--report", metavar="FILE.html", help="also write an HTML report")
    p.add_argument("--show-prompt", action="store_true",
                   help="print the exact text the model receives for the first example (chat template "
                        "applied) and exit; with --limit N, for the first N")
    p.add_argument("--unsafe-exec", action="store_true",
                   help="code tasks: run candidate programs WITHOUT the sandbox's isolation where it is "
                        "unavailable (every report then says so)")
    p.set_defaults(func=run)


DEFAULTS = {"data": None, "split": "test", "limit": None, "strategies": ["greedy"], "seed": 0, "chunk": 16}
_FLAGS = {"model": "--model", "task": "--task", "data": "--data", "split": "--split", "limit": "--limit",
          "strategies": "--strategy", "seed": "--seed", "chunk": "--chunk"}


def _given(args) -> dict:
    """The run-defining flags given on the command line (None: not given)."""
    given = {k: getattr(args, k) for k in ("model", "task", "data", "split", "limit", "seed", "chunk")}
    given["strategies"] = args.strategy
    return {k: v for k, v in given.items() if v is not None}


def _config(args) -> dict:
    if not args.model or not args.task:
        raise UserError("eval needs --model and --task (or --resume RUN_ID)")
    return {**DEFAULTS, **_given(args), "unsafe_exec": bool(args.unsafe_exec)}


def _resumed_config(args, store) -> tuple[dict, str]:
    """The stored config of run ``args.resume``, refusing flags that contradict it; and the model spec to
    connect with (the given --model where it differs only in credentials or deadlines)."""
    from .validate import model_identity, redact_spec

    run = store.get_run(args.resume)
    if run["command"] != "eval":
        raise UserError(f"run {args.resume} is a '{run['command']}' run; continue it with `selfimprove "
                        f"{run['command']} --resume {args.resume}`", field="--resume")
    config, model = dict(run["config"]), run["config"]["model"]
    for key, value in _given(args).items():
        stored = config.get(key, DEFAULTS.get(key))
        if key == "limit" and stored is not None and value > stored:
            config["limit"] = value  # the first `stored` examples are the same: only the new ones run
            continue
        same = (model_identity(value) == model_identity(stored)) if key == "model" else value == stored
        if not same:
            shown = redact_spec(value) if key == "model" else value
            why = (" (a resume may raise --limit to add examples, never lower it: the stored traces of the "
                   "examples beyond it would be left out of the table)") if key == "limit" else ""
            raise UserError(f"{_FLAGS[key]} {shown!r} contradicts run {args.resume}, which was started with "
                            f"{stored!r}{why}; drop the flag to resume, or start a new run",
                            field=_FLAGS[key])
    if "model" in _given(args):
        model = args.model
    elif "***" in model:
        raise UserError(f"run {args.resume}'s model URL carried credentials, which are never stored; "
                        "pass the same --model with them to resume", field="--model")
    return config, model


def run(args) -> int:
    from ..store.runs import RunStore

    if args.report:
        check_output_file(args.report, "--report")
    store = RunStore(args.store)
    try:
        return _run(args, store)
    finally:
        store.close()  # releases the run's lock


def _run(args, store) -> int:
    from .validate import check_examples, dry_run, redact_spec

    if args.resume:
        config, model = _resumed_config(args, store)
        run_id = args.resume
        store.lock_run(run_id)
    else:
        config = _config(args)
        model, config["model"] = config["model"], redact_spec(config["model"])
        run_id = None
    task, strategies, examples = _prepare(config)
    check_examples(examples, where=config.get("data") or config["task"])
    if getattr(args, "show_prompt", False):
        from ..backends import get_backend

        return show_prompts(get_backend(model), task, examples[:config.get("limit") or 1])
    backend = _backend(model, store, task)
    dry_run(strategies, config["strategies"], backend, task)
    stored = None if run_id is None else store.get_run(run_id)["config"]
    if stored is not None:
        _check_same_model(stored, backend, run_id)
        if config != stored:
            store.update_config(run_id, config)  # a raised --limit: the run now covers the added examples
    created, before = run_id is None, None if run_id is None else store.get_run(run_id)["status"]
    if created:
        config["model_fingerprint"] = backend.fingerprint()
        config["chat_template"] = backend.capabilities.chat_template  # chat=false in --model turns it off
        if sha := getattr(backend, "weights_sha256", None):  # which checkpoint (local hf models)
            config["model_weights_sha256"] = sha
        # a server's probe: n, logprobs, sampling
        if isinstance(info := getattr(backend, "info", None), dict):
            config["backend_info"] = info
        run_id = store.create_run("eval", config, seed=config["seed"])
        store.lock_run(run_id)
    try:
        return _execute(args, store, run_id, config, task, strategies, examples, backend)
    except UserError:  # refused once running (a strategy that needs a capability or a task it lacks)
        if created and not store.scopes(run_id):
            store.delete_run(run_id)  # nothing was done: leave no run behind
        elif before is not None:
            store.set_status(run_id, before)
            if stored is not None and config != stored:
                store.update_config(run_id, stored)  # the raised --limit did not happen
        raise


def _check_same_model(stored: dict, backend, run_id: str) -> None:
    """Refuse to resume with other weights than the run started with: its stored answers and the new ones
    would come from two models in one table. Local weights compare by their sha256 (a transformers upgrade
    that changes the fingerprint's config dump is no change); other hf models by the fingerprint. An API
    server's model cannot be checked from here."""
    then, now = stored.get("model_weights_sha256"), getattr(backend, "weights_sha256", None)
    what = "sha256"
    if not (then and now):
        if not str(stored.get("model_fingerprint", "")).startswith("hf-"):
            return
        then, now, what = stored["model_fingerprint"], backend.fingerprint(), "fingerprint"
    if then != now:
        raise UserError(f"the weights of {stored.get('model')!r} have changed since run {run_id} started "
                        f"({what} {then[:15]}… then, {now[:15]}… now): its stored answers and new ones would "
                        "come from two models; start a new run", field="--resume")


def check(args) -> None:
    """Validate a new run's flags as ``run`` does before it loads a model (``_config``,
    ``_task_and_strategies``), reading no data file. A ``--resume`` is checked against its stored config
    when it runs."""
    if not args.resume:
        _task_and_strategies(_config(args))


def _task_and_strategies(config: dict):
    """The task and the strategies of ``config``, each validated; no examples read yet."""
    from ..strategies import get_strategy
    from ..tasks import get_task
    from .validate import check_strategy

    task = get_task(config["task"], data=config["data"])
    if config.get("unsafe_exec") and task.code:
        task.unsafe_exec = True
    return task, [check_strategy(get_strategy(s), s) for s in config["strategies"]]


def _prepare(config: dict):
    task, strategies = _task_and_strategies(config)
    examples = task.examples(config["split"])
    if config["limit"] is not None:
        examples = examples[: config["limit"]]
    if not examples:
        raise UserError(f"task '{config['task']}' split '{config['split']}' has no examples")
    return task, strategies, examples


def _backend(model: str, store, task):
    from ..backends import get_backend
    from ..store.runs import CachedBackend
    from ..tiny.models import check_task_formats
    from .validate import check_model_dir

    check_model_dir(model)
    check_task_formats(model, task)
    return CachedBackend(get_backend(model), store)


def _execute(args, store, run_id, config, task, strategies, examples, backend) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from ..runner import run_strategy, strategy_metrics
    from ..strategies.base import describe
    from .tables import print_correction_table, print_strategy_table, print_verification_table

    console = Console(stderr=True)
    console.print(f"run {run_id} · {len(examples)} examples · store {store.path}", soft_wrap=True)
    store.set_status(run_id, "running")
    rows = {}
    with Progress(console=console, transient=True) as progress:
        for strategy in strategies:
            traces = run_strategy(backend, task, examples, strategy, store, run_id, chunk=config["chunk"],
                                  progress=progress)
            rows[describe(strategy)] = m = strategy_metrics(task, examples, traces, seed=config["seed"])
            store.put_metrics(run_id, describe(strategy), m)
    errors = sum(m.get("errors", 0) for m in rows.values())
    store.set_status(run_id, "incomplete" if errors else "done")
    print_strategy_table(rows, title=f"{config['task']} · {config['model']} · n={len(examples)}")
    print_correction_table(rows)
    print_verification_table(rows)
    if task.unsafe_exec:
        console.print("[bold red]UNSANDBOXED: candidate code ran without isolation (--unsafe-exec)[/]")
    if args.report:
        from ..report.html import write_report

        write_report(args.report, store, run_id)
        console.print(f"report: {args.report}", soft_wrap=True)
    console.print(f"stored as run {run_id} in {store.path}", soft_wrap=True)
    if errors:
        console.print(f"incomplete: {errors} example(s) had requests that failed past their retries (counted "
                      f"under 'errors', not scored); retry them with `selfimprove eval --resume {run_id}`",
                      soft_wrap=True)
        return EXIT_INCOMPLETE
    return 0


def show_prompts(backend, task, examples) -> int:
    """Print what the model receives for each example's task prompt: the template's text for a chat model, the
    messages sent to a chat server, else the plain text."""
    import json

    from ..chat import messages, plain

    for example in examples:
        prompt = task.prompt(example)
        if hasattr(backend, "render_prompt"):
            text = backend.render_prompt(prompt)
        elif backend.capabilities.chat_template:
            text = json.dumps(messages(prompt), indent=1, ensure_ascii=False)
        else:
            text = plain(prompt)
        print(f"--- example {example.id} · {backend.name} · chat template "
              f"{'applied' if backend.capabilities.chat_template else 'not applied'} ---")
        print(text)
    return 0
