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
"""


def register(sub) -> None:
    p = sub.add_parser("score", help="score completions from a JSONL file", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help="task whose gold fields the rows carry (e.g. gsm8k)")
    p.add_argument("--completions", required=True, help="JSONL: id, completion, and the task's gold fields")
    p.add_argument("--out", help="write one scored row per input here (default: stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..files import read_jsonl, require_field
    from ..tasks import get_task

    task = get_task(args.task, data=args.completions)
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
