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


def check_input_file(path: str | Path) -> Path:
    """``path`` as a readable regular file, else a UserError naming it."""
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", path=str(path))
    if path.is_dir():
        raise UserError("is a directory; expected a file", path=str(path))
    if not os.access(path, os.R_OK):
        raise UserError("file is not readable (permission denied)", path=str(path))
    return path


def check_output_file(path: str | Path, flag: str) -> Path:
    """Refuse, before any work, an output path that cannot be written: a folder, a missing or unwritable
    parent folder."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserError(f"{flag} {path} is a directory; give a file path", field=flag)
    if not parent.is_dir():
        raise UserError(f"{flag} {path}: folder {parent} does not exist; create it first", field=flag)
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{flag} {path} is not writable (permission denied)", field=flag)
    return path


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; a bad line (not UTF-8, not JSON, not an object)
    raises UserError naming the file and line."""
    path = check_input_file(path)
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UserError(f"not UTF-8 text (byte {raw[e.start]:#04x} at column {e.start + 1})",
                                path=str(path), line=lineno) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"not valid JSON ({e.msg} at column {e.colno})", path=str(path),
                                line=lineno) from None
            except RecursionError:
                raise UserError("JSON nested too deeply", path=str(path), line=lineno) from None
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


MODEL_METADATA = "selfimprove.json"
"""The file beside a model's weights that says how selfimprove made the model (and its weights' hash)."""


def weights_sha256(model_dir: str | Path) -> str | None:
    """The sha256 of a model directory's weights: of ``model.safetensors`` (what ``sha256sum`` prints), or for
    a sharded model of the lines ``<sha256>  <shard name>`` of its ``*.safetensors`` in name order; None where
    there are none (a hub id, a path that is not a directory). Identifies the weights, where a built-in
    preset's fingerprint identifies only the config they were trained from. The value ``weights_record``
    wrote into ``selfimprove.json`` is used while the files' sizes and mtimes still match it, so a cached
    model is hashed once."""
    import hashlib

    path = Path(model_dir)
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if not files:
        return None
    stat = _stat(files)
    try:
        meta = json.loads((path / MODEL_METADATA).read_text(encoding="utf-8"))
        if meta.get("weights_stat") == stat and isinstance(meta.get("weights_sha256"), str):
            return meta["weights_sha256"]
    except (OSError, ValueError, AttributeError):
        pass
    digests = []
    for f in files:
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
        digests.append(h.hexdigest())
    if [f.name for f in files] == ["model.safetensors"]:
        return digests[0]
    return hashlib.sha256("".join(f"{d}  {f.name}\n" for d, f in zip(digests, files)).encode()).hexdigest()


def weights_record(model_dir: str | Path) -> dict[str, Any]:
    """``{"weights_sha256": ..., "weights_stat": ...}`` for a model's ``selfimprove.json``, written when the
    model is saved (empty where the directory holds no weights)."""
    path = Path(model_dir)
    sha = weights_sha256(path)
    if sha is None:
        return {}
    return {"weights_sha256": sha, "weights_stat": _stat(sorted(path.glob("*.safetensors")))}


def _stat(files: list[Path]) -> list[list]:
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]
