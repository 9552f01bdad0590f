"""Built-in model names and the cache: ``resolve_model("tiny")`` → a local HF model directory.

A built-in name (``tiny``, ``micro``; see ``config.PRESETS``) resolves to ``$SELFIMPROVE_HOME/models/<name>``
(default home ``~/.cache/selfimprove``), pretraining it there on first use. A cached model whose config
fingerprint differs from the current preset (the preset or the task format changed) is retrained. Anything
else — a path, a hub id — is returned unchanged.

Concurrency: an exclusive lock file per model serialises two processes resolving the same name, and the model
is written to a temporary directory and renamed into place, so a reader never sees half a model. Not covered:
locking on network filesystems without ``flock``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .config import PRESETS, TinyConfig
from .pretrain import read_metadata

HOME_ENV = "SELFIMPROVE_HOME"


def home(override: str | Path | None = None) -> Path:
    """The selfimprove home: ``override``, else ``$SELFIMPROVE_HOME``, else ``~/.cache/selfimprove``."""
    if override is not None:
        return Path(override).expanduser()
    return Path(os.environ.get(HOME_ENV) or "~/.cache/selfimprove").expanduser()


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
    """A built-in name → its cached directory (pretrained on first use); anything else unchanged."""
    if not is_builtin(name_or_path) or Path(name_or_path).exists():
        return name_or_path
    path, _ = ensure_model(name_or_path, home_dir=home_dir, progress=progress)
    return str(path)
