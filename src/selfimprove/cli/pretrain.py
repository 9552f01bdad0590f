"""``selfimprove pretrain``: train a built-in model from scratch and cache it.

Without ``--force`` a cached model trained from the same config is reused and its metadata printed. Covered:
the built-in presets (``tiny``, ``micro``) with ``--steps`` / ``--seed`` overrides. Not covered: choosing the
model size from the command line (edit ``tiny/config.py`` presets instead).
"""

from __future__ import annotations

import argparse
import json

from ..errors import UserError

EPILOG = """examples:
  selfimprove pretrain                      # the demo's model, about 2 minutes on a 2-core CPU
  selfimprove pretrain --name micro         # a seconds-long model for tests
  selfimprove pretrain --name tiny --steps 2000 --seed 1 --force --home /tmp/si

A model pretrained with --steps/--seed overrides is saved as <name>-s<steps>-seed<seed> unless --out is given;
`--model tiny` elsewhere always means the preset."""


def register(subparsers) -> None:
    p = subparsers.add_parser("pretrain", help="pretrain a built-in model (tiny, micro) and cache it",
                              description=" ".join(__doc__.split("\n\n")[0].split()), epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="tiny", help="built-in model name (default: tiny)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the preset's)")
    p.add_argument("--seed", type=int, default=None, help="seed for weights and data (default: the preset's)")
    p.add_argument("--force", action="store_true", help="retrain even if a matching model is cached")
    p.add_argument("--home", default=None, help="selfimprove home (default: $SELFIMPROVE_HOME or "
                                                "~/.cache/selfimprove)")
    p.add_argument("--out", default=None, help="save under this name instead (in <home>/models/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def check(args) -> None:
    """Validate the flags as ``run`` does before it pretrains (``_config``)."""
    _config(args)


def run(args) -> int:
    from ..tiny.models import ensure_model

    config, out = _config(args)
    path, meta = ensure_model(out or args.name, config, home_dir=args.home, force=args.force,
                              progress=not args.quiet)
    keys = ("params", "steps", "final_loss", "dev_greedy_accuracy", "test_hard_greedy_accuracy",
            "wall_seconds")
    print(json.dumps({"model": str(path), **{k: meta.get(k) for k in keys}}, indent=2))
    return 0


def _config(args):
    """The preset with the --steps/--seed overrides, and the name to save it under (None: the preset's)."""
    from ..tiny.config import PRESETS

    if args.name not in PRESETS:
        raise UserError(f"unknown built-in model {args.name!r}; choose one of: {', '.join(PRESETS)}",
                        field="--name")
    config, out = PRESETS[args.name], args.out
    changes = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    if changes:
        if any(v < (1 if k == "steps" else 0) for k, v in changes.items()):
            raise UserError("--steps must be >= 1 and --seed >= 0", field="--steps/--seed")
        config = config.replace(**changes)
        out = out or f"{args.name}-s{config.steps}-seed{config.seed}"
    return config, out
