"""Built-in model names and the cache: ``resolve_model("tiny")`` → a local HF model directory.

A built-in name (``tiny``, ``tiny-verify``, ``micro``; see ``config.PRESETS``) resolves to
``$SELFIMPROVE_HOME/models/<name>`` (default home ``~/.cache/selfimprove``), pretraining it there on first
use. A cached model whose config fingerprint differs from the current preset (the preset or the task format
changed) is retrained. Anything else — a path, a hub id — is returned unchanged.

Concurrency: an exclusive lock file per model serialises two processes resolving the same name, and the model
is written to a temporary directory and renamed into place, so a reader never sees half a model. Not covered:
locking on network filesystems without ``flock``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..files import home
from .config import PRESETS, TinyConfig
from .pretrain import read_metadata


def model_dir(name: str, home_dir: str | Path | None = None) -> Path:
    return home(home_dir) / "models" / name


def is_builtin(name: str) -> bool:
    return name in PRESETS


def cached(name: str, config: TinyConfig, home_dir: str | Path | None = None) -> Path | None:
    """The cached directory of ``name`` if it holds a complete model trained from ``config``."""
    path = model_dir(name, home_dir)
    meta = read_metadata(path)
    if meta is None or meta.get("fingerprint") != config.fingerprint() or not (path / "config.json").exists():
        return None
    return path


def ensure_model(name: str, config: TinyConfig | None = None, *, home_dir: str | Path | None = None,
                 force: bool = False, progress: bool = True) -> tuple[Path, dict]:
    """Return ``(directory, metadata)`` of built-in model ``name``, pretraining it unless a matching one is
    cached (``force`` retrains). ``config`` defaults to the preset of that name."""
    import fcntl

    from .pretrain import pretrain

    if config is None:
        if name not in PRESETS:
            from ..errors import UserError

            raise UserError(f"unknown built-in model {name!r}; built-in names: {', '.join(PRESETS)}",
                            field="model")
        config = PRESETS[name]
    target = model_dir(name, home_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the cache filled
        if not force and cached(name, config, home_dir) is not None:
            return target, read_metadata(target)
        if progress and target.exists():
            print(f"selfimprove: cached model {name!r} was built from another config; retraining",
                  file=sys.stderr)
        tmp = target.parent / f".{name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            meta = pretrain(config, tmp, name=name, progress=progress)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target, meta


def resolve_model(name_or_path: str, *, home_dir: str | Path | None = None, progress: bool = True) -> str:
    """A built-in name → its cached directory (pretrained or converted on first use); anything else
    unchanged."""
    from ..models import BUILTIN

    if name_or_path in BUILTIN and not Path(name_or_path).exists():
        from ..models.smollm2 import ensure_smollm2

        return str(ensure_smollm2(home_dir, progress=progress))
    if not is_builtin(name_or_path) or Path(name_or_path).exists():
        return name_or_path
    path, _ = ensure_model(name_or_path, home_dir=home_dir, progress=progress)
    return str(path)


def trained_verify_format(model: str | Path) -> int | None:
    """The verify/correct format version a built-in model learned: from its preset (a built-in name) or from
    the ``selfimprove.json`` beside its weights (a directory, e.g. the cache); None when unknown (any other
    model, or a fine-tuned round directory)."""
    if is_builtin(str(model)) and not Path(model).exists():
        return PRESETS[str(model)].verify_format
    meta = read_metadata(model) if Path(model).is_dir() else None
    if meta is None:
        return None
    return int(meta.get("config", {}).get("verify_format", 1))  # metadata written before the field: format 1


def check_task_formats(model: str | Path, task) -> None:
    """Refuse a built-in model asked in verify/correct formats it never learned: it would measure nothing."""
    trained = trained_verify_format(model)
    asked = task.verify_format
    if trained is not None and asked is not None and asked != trained:
        from ..errors import UserError

        raise UserError(f"the built-in model '{model}' learned verify format {trained}; use --task "
                        f"arithmetic:verify={trained} (got verify={asked})", field="task")
