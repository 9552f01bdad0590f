"""``selfimprove ls KIND``: what can be named on the command line — models, tasks, strategies, verifiers or
training methods — each with its one-line description and options."""

from __future__ import annotations

import argparse

EPILOG = """examples:
  selfimprove ls strategies
  selfimprove ls models
"""


def register(sub) -> None:
    from ..registry import KINDS

    p = sub.add_parser("ls", help="list models, tasks, strategies, verifiers or methods", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=list(KINDS), help="what to list")
    p.set_defaults(func=run)


def lines(kind: str) -> list[str]:
    """The listing of ``kind``: one line per name with its description, then one line per option."""
    from ..registry import describe_default, entries, type_name

    out = []
    listed = entries(kind)
    width = max((len(e.name) for e in listed), default=0) + 2
    for e in listed:
        out.append(f"{e.name:<{width}}{e.summary()}")
        for o in e.settings():
            doc = f"  {o.doc}" if o.doc else ""
            out.append(f"{'':<{width}}  {o.name}={describe_default(o.default)} ({type_name(o.type)}){doc}")
    return out


def run(args) -> int:
    print("\n".join(lines(args.kind)))
    return 0
