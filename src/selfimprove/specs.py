"""``name:key=value,key=value`` specs, as the CLI takes them for tasks and strategies."""

from __future__ import annotations

import dataclasses
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


def build_dataclass(cls, options: dict[str, str], what: str):
    """Instantiate dataclass ``cls`` from string options, converting each to its field's type."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, raw in options.items():
        if key not in fields:
            raise UserError(f"unknown {what} option '{key}'; known: {', '.join(sorted(fields))}")
        kwargs[key] = _convert(raw, hints[key], f"{what} option '{key}'")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise UserError(f"{what}: {e}") from None


def _convert(raw: str, hint, where: str):
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    target = args[0] if args and typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)) else hint
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
