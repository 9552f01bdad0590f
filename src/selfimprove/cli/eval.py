"""``selfimprove eval``: run strategies on a task and compare them in one table (one row per strategy)."""

from __future__ import annotations

import argparse

from ..errors import UserError

EPILOG = """examples:
  selfimprove eval --model scripted --task arithmetic --limit 50 --strategy greedy \\
      --strategy self-consistency:n=8,temperature=0.8
  selfimprove eval --model tiny --task arithmetic --strategy greedy --strategy self-consistency:n=16
  selfimprove eval --model Qwen/Qwen2.5-0.5B-Instruct --task gsm8k --data gsm8k/test.jsonl --limit 100 \\
      --strategy greedy
  selfimprove eval --resume 20261123-101500-ab12cd     # continue an interrupted run
"""


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate strategies on a task", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="tiny | tiny-verify | micro | smollm2 | scripted | PATH | hub id | openai:URL | "
                   "vllm:PATH; hf models take options, e.g. smollm2:chat=false")
    p.add_argument("--task", help="arithmetic | gsm8k | multiple-choice | boolq | jsonl, with :key=value options")
    p.add_argument("--data", help="data file or folder for file-backed tasks")
    p.add_argument("--split", default="test", help="split name (default: test)")
    p.add_argument("--limit", type=int, help="first N examples only")
    p.add_argument("--strategy", action="append", help="NAME[:key=value,...]; repeatable (default: greedy)")
    p.add_argument("--seed", type=int, default=0, help="seed for bootstrap CIs")
    p.add_argument("--chunk", type=int, default=16, help="examples per batch and per stored transaction")
    p.add_argument("--store", help="run store SQLite file (default: $SELFIMPROVE_HOME/runs.db)")
    p.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run with its stored config")
    p.add_argument("--report", metavar="FILE.html", help="also write an HTML report")
    p.add_argument("--show-prompt", action="store_true",
                   help="print the exact text the model receives for the first example (chat template applied) "
                        "and exit; with --limit N, for the first N")
    p.add_argument("--unsafe-exec", action="store_true",
                   help="code tasks: run candidate programs WITHOUT the sandbox's isolation where it is "
                        "unavailable (every report then says so)")
    p.set_defaults(func=run)


def _config(args) -> dict:
    if args.resume:
        return {}
    if not args.model or not args.task:
        raise UserError("eval needs --model and --task (or --resume RUN_ID)")
    return {"model": args.model, "task": args.task, "data": args.data, "split": args.split,
            "limit": args.limit, "strategies": args.strategy or ["greedy"], "seed": args.seed,
            "chunk": args.chunk, "unsafe_exec": bool(args.unsafe_exec)}


def run(args) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from ..backends import get_backend
    from ..runner import run_strategy, strategy_metrics
    from ..store.runs import CachedBackend, RunStore
    from ..strategies import get_strategy
    from ..strategies.base import describe
    from ..tasks import get_task
    from ..tiny.models import check_task_formats
    from .tables import print_correction_table, print_strategy_table

    store = RunStore(args.store)
    if args.resume:
        run_id = args.resume
        config = store.get_run(run_id)["config"]
    else:
        config = _config(args)
    task = get_task(config["task"], data=config["data"])
    if config.get("unsafe_exec") and task.code:
        task.unsafe_exec = True
    check_task_formats(config["model"], task)
    strategies = [get_strategy(s) for s in config["strategies"]]
    examples = task.examples(config["split"])
    if config["limit"] is not None:
        examples = examples[: config["limit"]]
    if not examples:
        raise UserError(f"task '{config['task']}' split '{config['split']}' has no examples")
    if getattr(args, "show_prompt", False):
        return show_prompts(get_backend(config["model"]), task, examples[:args.limit or 1])
    backend = CachedBackend(get_backend(config["model"]), store)
    if not args.resume:
        config["model_fingerprint"] = backend.fingerprint()
        config["chat_template"] = backend.capabilities.chat_template
        run_id = store.create_run("eval", config, seed=config["seed"])
    console = Console(stderr=True)
    console.print(f"run {run_id} · {len(examples)} examples · store {store.path}")
    store.set_status(run_id, "running")
    rows = {}
    with Progress(console=console, transient=True) as progress:
        for strategy in strategies:
            traces = run_strategy(backend, task, examples, strategy, store, run_id, chunk=config["chunk"],
                                  progress=progress)
            rows[describe(strategy)] = m = strategy_metrics(task, examples, traces, seed=config["seed"])
            store.put_metrics(run_id, describe(strategy), m)
    store.set_status(run_id, "done")
    print_strategy_table(rows, title=f"{config['task']} · {config['model']} · n={len(examples)}")
    print_correction_table(rows)
    if task.unsafe_exec:
        console.print("[bold red]UNSANDBOXED: candidate code ran without isolation (--unsafe-exec)[/]")
    if args.report:
        from ..report.html import write_report

        write_report(args.report, store, run_id)
        console.print(f"report: {args.report}")
    console.print(f"stored as run {run_id} in {store.path}")
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
