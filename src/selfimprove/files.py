"""Where selfimprove keeps its files (``home``), and reading user files with errors that name the file, the
line and the field."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import UserError

HOME_ENV = "SELFIMPROVE_HOME"
"""Environment variable naming the selfimprove home (models, runs.db, demo and train run directories)."""


def home(override: str | Path | None = None) -> Path:
    """The selfimprove home: ``override``, else ``$SELFIMPROVE_HOME``, else ``~/.cache/selfimprove``. An empty
    ``SELFIMPROVE_HOME`` counts as unset (it never means the current directory)."""
    if override is not None and str(override) != "":
        return Path(override).expanduser()
    return Path(os.environ.get(HOME_ENV) or "~/.cache/selfimprove").expanduser()


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; a bad line raises UserError naming it."""
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", path=str(path))
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"not valid JSON ({e.msg} at column {e.colno})", path=str(path),
                                line=lineno) from None
            if not isinstance(obj, dict):
                raise UserError(f"expected a JSON object, got {type(obj).__name__}", path=str(path),
                                line=lineno)
            yield lineno, obj


def require_field(obj: dict[str, Any], field: str, path: str | Path, line: int, types: type | tuple = object):
    """``obj[field]``, or a UserError naming file, line and field when missing or of the wrong type."""
    if field not in obj:
        raise UserError("missing field", path=str(path), line=line, field=field)
    value = obj[field]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)
                                        and int in _as_tuple(types)):
        names = "/".join(t.__name__ for t in _as_tuple(types))
        raise UserError(f"expected {names}, got {type(value).__name__} {value!r:.40}", path=str(path),
                        line=line, field=field)
    return value


def _as_tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def write_jsonl(path: str | Path, rows) -> None:
    with Path(path).open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, sort_keys=True) + "\n" for row in rows)
