"""Checks every command runs before it creates a run: flag types, example ids, and model specs as recorded.

A rejected input is a ``UserError`` (one line, exit status 2) raised before the store holds anything of the
run, so no run is ever left 'running' or 'failed' by bad input. Credentials embedded in a model spec's URLs
(``http://user:secret@host``) are replaced by ``***`` wherever the spec is recorded or printed.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence

from ..errors import UserError
from ..records import Example

_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s,?#]*@")
_OPTION = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_-]*\s*=")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the flag and exits 2)."""
    return _int(text, 1)


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int(text, 0)


def _int(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def redact_spec(spec: str | None) -> str | None:
    """``spec`` with the user:password@ of every URL replaced by ``***@``."""
    return spec if spec is None else _USERINFO.sub(r"\1***@", spec)


def model_identity(spec: str | None) -> str | None:
    """What makes two model specs the same model: the spec without credentials and without the deadline
    options of an ``openai:`` spec (timeouts and retries change how long we wait, not what is asked)."""
    spec = redact_spec(spec)
    if spec is None or not spec.startswith("openai:"):
        return spec
    parts = [p for p in spec.removeprefix("openai:").split(",")
             # chat: what is asked
             if "://" in p or not _OPTION.match(p) or p.strip().lower().startswith("chat=")]
    return "openai:" + ",".join(parts)


def check_examples(examples: Sequence[Example], where: str) -> None:
    """Refuse duplicate example ids: each example's trace is stored under its id."""
    seen: set[str] = set()
    for e in examples:
        if e.id in seen:
            raise UserError(f"duplicate example id {e.id!r} (ids must be unique within a split)", path=where,
                            field="id")
        seen.add(e.id)


def check_strategy(strategy, spec: str):
    """``strategy``, once its settings are ones a request could be sent with: finite numbers everywhere, and
    sampling fields (n, temperature, top_p, top_k, max_tokens, seed) in SamplingParams' ranges."""
    import dataclasses
    import math

    from ..records import SamplingParams

    name = spec.partition(":")[0]
    values = {f.name: getattr(strategy, f.name) for f in dataclasses.fields(strategy)}
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"strategy '{name}' option '{key}' must be a finite number, got {value}")
    sampling = {f.name for f in dataclasses.fields(SamplingParams)} - {"stop", "logprobs"}
    for key in sorted(sampling & set(values)):
        try:
            SamplingParams(**{key: values[key]})
        except (TypeError, ValueError) as e:
            raise UserError(
                f"strategy '{name}' option '{key}': {str(e).replace('SamplingParams.', '')}") from None
    return strategy


def check_model_dir(spec: str) -> None:
    """A ``--model`` naming a local path must be a Hugging Face model directory (a ``config.json`` holding a
    JSON object); registered names (scripted, openai:..., tiny, ...) and hub ids pass through."""
    import json
    from pathlib import Path

    from ..registry import find

    if find("models", spec.partition(":")[0]) is not None:
        return
    path = Path(spec).expanduser()
    if not path.exists():
        if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
            raise UserError(f"no model directory at {spec} (nor a registered model name)", field="--model")
        return  # a hub id: the backend says whether it can be loaded
    config = path / "config.json"
    if not path.is_dir() or not config.is_file():
        raise UserError(f"{spec} is not a Hugging Face model directory (no config.json)", field="--model")
    try:
        ok = isinstance(json.loads(config.read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise UserError(f"{config} is not a JSON object; is {spec} a model directory?", field="--model")


def dry_run(strategies, specs: Sequence[str], backend, task) -> None:
    """Run each strategy on no examples before the run exists: a strategy refuses a task or a backend it
    cannot work with (a code strategy on a non-code task, a missing capability) at its start, so the refusal
    comes before anything is stored. No request is sent."""
    for strategy, spec in zip(strategies, specs, strict=True):
        try:
            strategy.run(backend, task, [])
        except (ValueError, TypeError) as e:
            raise UserError(f"strategy '{spec}': {e}", field="--strategy") from None
