"""``name:key=value,key=value`` specs, as the CLI takes them for tasks, strategies and verifiers."""

from __future__ import annotations

import types
import typing

from .errors import UserError


def parse_spec(spec: str, what: str) -> tuple[str, dict[str, str]]:
    """Split ``'self-consistency:n=16,temperature=0.7'`` into ``('self-consistency', {...})``."""
    name, _, rest = spec.partition(":")
    options: dict[str, str] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise UserError(f"bad {what} option '{part}' in '{spec}'; expected key=value")
        options[key.strip().replace("-", "_")] = value.strip()
    return name.strip(), options


def convert_option(raw: str, hint, where: str):
    """``raw`` read as type ``hint`` (bool, int, float, str, ``X | None``, a tuple as ``a|b``); a UserError
    naming ``where`` when it cannot be."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    target = args[0] if args and union else hint
    if raw.lower() in ("none", "null") and type(None) in typing.get_args(hint):
        return None
    try:
        if target is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if target in (int, float, str):
            return target(raw)
        if typing.get_origin(target) is tuple:
            return tuple(x for x in raw.split("|") if x)
    except ValueError:
        raise UserError(f"{where}: cannot read {raw!r} as {getattr(target, '__name__', target)}") from None
    return raw
