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


def check_types(cls, values: dict, where: str | None = None, prefix: str = "") -> None:
    """Refuse values whose type does not fit their dataclass field (a recipe's ``rounds = "two"``) and
    non-finite floats, with a UserError naming the file (``where``) and the field."""
    import math

    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key not in hints:
            continue
        name = prefix + (key.replace("_", "-") if prefix == "--" else key)
        if not _fits(value, hints[key]):
            want = getattr(hints[key], "__name__", None) or str(hints[key]).replace("typing.", "")
            raise UserError(f"expected {want}, got {type(value).__name__} {value!r:.40}", path=where,
                            field=name)
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"must be a finite number, got {value}", path=where, field=name)


def _fits(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is typing.Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (tuple, list):
        inner = [a for a in args if a is not Ellipsis]
        return isinstance(value, (list, tuple, str)) and (not inner or isinstance(value, str) and
                                                          inner[0] is str or
                                                          all(_fits(v, inner[0]) for v in value))
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, hint) if isinstance(hint, type) else True
