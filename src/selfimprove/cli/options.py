"""Command-line flags generated from typed configs: names, types, defaults and help come from the dataclass
fields and their docstrings, so no default is typed twice.

``add_loop_arguments(parser)`` adds every setting of a training run (``training.config.LoopConfig``): the
run's fields (``--rounds``, ``--n``, ...), ``--method`` and the settings of every registered method
(``--threshold``, ``--rationalize``, ...), the trainer settings SFT and DPO share (``--max-steps`` sets both),
those of one trainer (``--sft-lr``, ``--dpo-beta``) and the guards' (``--guards-limit``). Older names stay as
aliases (``--k`` for ``--n``, ``--lr`` for ``--sft-lr``; ``config.ALIASES``). ``loop_values(args)`` returns
the values given, in the keys ``LoopConfig.from_dict`` takes.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

SKIP = {"seed"}
"""Trainer fields without a flag: a run seeds each round's training from its own ``--seed``."""


def add_fields(group, cls, names=None, *, prefix: str = "", dest_prefix: str = "", aliases=None,
               note: str = "", owners: dict[str, list[str]] | None = None) -> list[str]:
    """A flag per field of ``cls`` (all, or those in ``names``): ``--<prefix><field-name>`` with dest
    ``<dest_prefix><field>``, help from the field's docstring and default; returns the dests."""
    from ..registry import field_docs

    hints, docs, dests = typing.get_type_hints(cls), field_docs(cls), []
    for f in dataclasses.fields(cls):
        if names is not None and f.name not in names:
            continue
        dest = dest_prefix + f.name
        flag = f"--{prefix}{f.name}".replace("_", "-")
        flags = [flag] + [a for a in (aliases or {}).get(dest, ()) if a != flag]
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        who = f" ({', '.join(owners[f.name])})" if owners and f.name in owners else note
        text = docs.get(f.name, "") + who + f" (default: {_shown(default)})"
        group.add_argument(*flags, dest=dest, default=None, help=text.replace("%", "%%"),
                           **_kind(hints[f.name]))
        dests.append(dest)
    return dests


def add_loop_arguments(parser) -> None:
    """Every LoopConfig setting as a flag, in groups."""
    from ..training.config import ALIASES, GuardSettings, LoopConfig
    from ..training.methods import method_classes
    from ..training.settings import DPOSettings, SFTSettings, TrainerSettings

    aliases: dict[str, list[str]] = {}
    for old, new in ALIASES.items():
        dest = new.removeprefix("method.").replace(".", "__")
        aliases.setdefault(dest, []).append("--" + old.replace("_", "-"))
    nested = {"method", "sft", "dpo", "guards", "rl"}
    run = parser.add_argument_group("run")
    methods = method_classes()
    run.add_argument("--method", choices=list(methods), default=None,
                     help=f"training method (default: {LoopConfig.method}); list: selfimprove ls methods")
    run_fields = [f.name for f in dataclasses.fields(LoopConfig) if f.name not in nested]
    dests = ["method", *add_fields(run, LoopConfig, run_fields, aliases=aliases)]
    owners: dict[str, list[str]] = {}
    fields: dict[str, type] = {}
    for name, cls in methods.items():
        for f in dataclasses.fields(cls):
            if f.name in run_fields:
                raise ValueError(f"method {name}: setting {f.name!r} has the name of a run setting; "
                                 "rename it")
            owners.setdefault(f.name, []).append(name)
            fields.setdefault(f.name, cls)
    group = parser.add_argument_group("method settings (each applies to the methods named)")
    for fname, cls in fields.items():
        dests += add_fields(group, cls, [fname], aliases=aliases, owners=owners)
    shared = [f.name for f in dataclasses.fields(TrainerSettings) if f.name not in SKIP]
    dests += add_fields(parser.add_argument_group("training, SFT and DPO alike (TRL)"), SFTSettings, shared,
                        note=" (SFT and DPO)")
    for key, cls in (("sft", SFTSettings), ("dpo", DPOSettings)):
        own = [f.name for f in dataclasses.fields(cls) if f.name not in shared and f.name not in SKIP]
        dests += add_fields(parser.add_argument_group(f"{key.upper()} only"), cls, own, prefix=f"{key}-",
                            dest_prefix=f"{key}__", aliases=aliases)
    dests += add_fields(parser.add_argument_group("guards (guarded methods)"), GuardSettings,
                        prefix="guards-", dest_prefix="guards__", aliases=aliases)
    from ..training.grpo import GRPOSettings

    dests += add_fields(parser.add_argument_group("GRPO (methods whose objective is grpo)"), GRPOSettings,
                        prefix="rl-", dest_prefix="rl__", aliases=aliases)
    parser.set_defaults(loop_dests=tuple(dests))


def flag_of(key: str) -> str:
    """The flags of a setting, older names included: ``'sft.lr'`` → ``'--sft-lr/--lr'``, ``'n'`` →
    ``'--n/--k'``."""
    from ..training.config import ALIASES
    from ..training.settings import TrainerSettings

    group, _, name = key.rpartition(".")
    shared = {f.name for f in dataclasses.fields(TrainerSettings)}
    primary = f"--{name}" if not group or group == "method" or (group in ("sft", "dpo") and name in shared) \
        else f"--{group}-{name}"
    olds = ["--" + old for old, new in ALIASES.items() if new in (key, f"method.{key}")]
    return "/".join(dict.fromkeys(f.replace("_", "-") for f in [primary, *olds]))


def flags_in(message: str) -> str:
    """``message`` with each ``LoopConfig.x`` / ``SFTSettings.x`` / ... named by its flags (``--n/--k``)."""
    import re

    message = re.sub(r"^([a-z][\w-]*): (\w+) must", lambda m: f"{m.group(1)}: {flag_of(m.group(2))} must",
                     message)  # a method's own check: "lmsi: threshold must ..."
    for cls, group in (("LoopConfig", ""), ("SFTSettings", "sft"), ("DPOSettings", "dpo"),
                       ("GuardSettings", "guards")):
        message = re.sub(rf"\b{cls}\.(\w+)",
                         lambda m, g=group: flag_of(f"{g}.{m.group(1)}" if g else m.group(1)),
                         message)
    return message


def loop_values(args) -> dict[str, Any]:
    """The LoopConfig values given as flags (``sft.lr``-style keys for the nested ones)."""
    out = {}
    for dest in getattr(args, "loop_dests", ()):
        value = getattr(args, dest, None)
        if value is not None:
            out[dest.replace("__", ".")] = dict(value) if dest.endswith("trl_args") else value
    return out


def _shown(default) -> str:
    if isinstance(default, tuple):
        return " ".join(map(str, default)) or "none"
    if isinstance(default, dict):
        return " ".join(f"{k}={v}" for k, v in default.items()) or "none"
    if default is not None and hasattr(default, "name") and not isinstance(default, str):
        return default.name
    return "none" if default is None else str(default)


def _kind(hint) -> dict[str, Any]:
    """argparse keywords for a field type: booleans get --x / --no-x, tuples take several values."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    base = args[0] if optional and len(args) == 1 else hint
    origin = typing.get_origin(base)
    if base is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is tuple:
        item = typing.get_args(base)[0]
        return {"nargs": "+", "type": item, "metavar": item.__name__.upper()}
    if origin is dict:
        return {"nargs": "+", "type": _key_value, "metavar": "KEY=VALUE"}
    if base in (int, float):
        return {"type": _or_none(base) if optional else base, "metavar": base.__name__.upper()}
    return {"metavar": "NAME" if optional else "TEXT"} if base is str or optional else {}


def _or_none(kind):
    def convert(text: str):
        return None if text.lower() == "none" else kind(text)
    convert.__name__ = kind.__name__
    return convert


def _key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as TOML (``4``, ``0.1``, ``true``, ``"x"``), else kept as text."""
    import tomllib

    key, eq, value = text.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value
