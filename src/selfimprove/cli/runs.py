"""``selfimprove runs``: list, show and export stored runs."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """examples:
  selfimprove runs list
  selfimprove runs show 20261123-101500-ab12cd
  selfimprove runs export 20261123-101500-ab12cd --out run.jsonl
"""


def register(sub) -> None:
    p = sub.add_parser("runs", help="list, show or export stored runs", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", help="run store SQLite file (default: $SELFIMPROVE_HOME/runs.db)")
    ops = p.add_subparsers(dest="op", required=True, metavar="OP")
    ops.add_parser("list", help="recent runs")
    show = ops.add_parser("show", help="a run's config and metrics")
    show.add_argument("run_id")
    export = ops.add_parser("export", help="a run's traces as JSONL (one trace per line)")
    export.add_argument("run_id")
    export.add_argument("--out", help="file to write (default: stdout)")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..files import check_output_file
    from ..store.runs import RunStore

    if args.op == "export" and args.out:
        check_output_file(args.out, "--out")
    store = RunStore(args.store, readonly=True)  # reading never writes: a read-only store can be listed
    if args.op == "list":
        table = Table(title=f"runs in {store.path}")
        for col in ("id", "command", "status", "traces", "created"):
            table.add_column(col)
        for r in store.list_runs():
            table.add_row(r["id"], r["command"], r["status"], str(r["traces"]), r["created"])
        Console().print(table)
    elif args.op == "show":
        run_ = store.get_run(args.run_id)
        run_["metrics"] = store.metrics(args.run_id)
        print(json.dumps(run_, indent=2, default=str))
    else:
        store.get_run(args.run_id)  # a clear error for an unknown id
        out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115 — or stdout
        try:
            for scope in store.scopes(args.run_id):
                for t in store.traces(args.run_id, scope):
                    out.write(json.dumps({"run_id": args.run_id, "scope": scope, **t.to_dict()}) + "\n")
        finally:
            if args.out:
                out.close()
    return 0
