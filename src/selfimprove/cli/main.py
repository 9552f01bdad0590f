"""The ``selfimprove`` command: one module per subcommand under ``selfimprove.cli``.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets ``func=run``;
``run(args) -> int`` returns the exit status: 0 done, 2 bad input (a ``UserError``: one line on stderr, no
run created or left half-written), 3 incomplete (requests failed past their retries; ``--resume`` retries
them). ``--debug`` shows the traceback instead of the one line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import EXIT_INCOMPLETE, EXIT_USER_ERROR, RunIncomplete, UserError

SUBCOMMANDS = ["eval", "score", "runs", "analyze", "pretrain", "train", "demo", "ls", "view"]
"""Module names under selfimprove.cli, in the order --help lists them."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors exit 2 too, with one line
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="selfimprove", description=" ".join(__doc__.split("\n\n")[0].split()),
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="example:\n  selfimprove eval --model scripted --task arithmetic --strategy "
                     "greedy\n\nexit status: 0 done · 2 bad input (nothing run) · 3 incomplete (requests "
                     "failed past their retries;\n"
                     "  counted under 'errors', never as answers; --resume RUN_ID retries them)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"selfimprove.cli.{name.replace('-', '_')}")
        except ModuleNotFoundError as e:  # a subcommand whose module is not written yet
            if e.name == f"selfimprove.cli.{name.replace('-', '_')}":
                continue
            raise
        module.register(sub)
    return parser


def check(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` and validate its settings as the command does before its first expensive step, doing
    none of the work: no model is loaded, pretrained or converted, no run is created and no data file is
    read. A subcommand module's ``check(args)``, where it has one, is the same validation its ``run`` starts
    with (``train.plan_run``, ``eval``'s config and strategies, ``demo.plan``). argparse's refusals exit 2
    (``SystemExit``); a setting refused by validation raises ``UserError``."""
    args = build_parser().parse_args(argv)
    if not getattr(args, "func", None):
        raise UserError("no command given")
    validate = getattr(sys.modules[args.func.__module__], "check", None)
    if validate is not None:
        validate(args)
    return args


def quiet_third_party() -> None:
    """Our own output only: turn off the libraries' progress bars (transformers' "Loading weights" and
    "Writing model shards", the hub's downloads; our long steps show one rich progress display each) and their
    deprecation and advisory warnings, which name internals a user cannot change. Explicit environment
    settings win; ``--debug`` skips this."""
    import warnings

    # transformers' tqdm bars follow the hub's switch
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "transformers" in sys.modules:  # imported already (in-process callers): tell it directly
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    for module in ("transformers", "trl", "peft", "accelerate", "datasets", "torch"):
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=module)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.debug:
        quiet_third_party()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        if args.debug:
            raise
        print("selfimprove: error: " + " ".join(str(e).split()), file=sys.stderr)  # one line, always
        return EXIT_USER_ERROR
    except RunIncomplete as e:
        if args.debug:
            raise
        print(f"selfimprove: incomplete: {e}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except KeyboardInterrupt:
        print("selfimprove: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
