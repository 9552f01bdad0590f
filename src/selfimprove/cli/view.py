"""``selfimprove view``: a local, read-only web viewer over the run store and run directories."""

from __future__ import annotations

import argparse

from ..errors import UserError

EPILOG = """examples:
  selfimprove view                              # http://127.0.0.1:8765, the default store
  selfimprove view --store runs.db --port 9000
"""


def register(sub) -> None:
    p = sub.add_parser("view", help="browse runs, rounds, traces and steps in a local web page (read-only)",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--store", help="run store SQLite file (default: $SELFIMPROVE_HOME/runs.db)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1, this machine only; the viewer has no login)")
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        import uvicorn

        from ..view.app import create_app
    except ImportError as e:
        raise UserError(f"the viewer needs the [view] extra ({e.name} is missing): "
                        f"pip install 'selfimprove[view]'") from None
    from ..store.runs import default_store_path

    store = args.store or default_store_path()
    app = create_app(store)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach this address can read every run")
    print(f"selfimprove view: http://{args.host}:{args.port}/  (store {store}, read-only; Ctrl-C stops)",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
