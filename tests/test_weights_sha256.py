"""Runs and saved models record which weights they used: the sha256 of ``model.safetensors``.

A built-in preset's fingerprint identifies the config a model was pretrained from, so two pretrainings (other
thread counts, other CPUs) share it; the weights' hash tells them apart. The completion cache's key (the
backend's fingerprint) is not changed by any of this.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from selfimprove.files import weights_record, weights_sha256


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_weights_sha256_of_one_file_and_of_shards(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    (one / "model.safetensors").write_bytes(b"weights")
    assert weights_sha256(one) == hashlib.sha256(b"weights").hexdigest()  # what sha256sum prints
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    for i, data in ((2, b"b"), (1, b"a")):
        (sharded / f"model-0000{i}-of-00002.safetensors").write_bytes(data)
    lines = "".join(f"{hashlib.sha256(d).hexdigest()}  model-0000{i}-of-00002.safetensors\n"
                    for i, d in ((1, b"a"), (2, b"b")))
    assert weights_sha256(sharded) == hashlib.sha256(lines.encode()).hexdigest()
    assert weights_sha256(tmp_path / "missing") is None and weights_sha256("Qwen/Qwen2.5-0.5B") is None


def test_the_recorded_hash_is_used_only_while_the_file_is_unchanged(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"first")
    record = weights_record(tmp_path)
    assert record["weights_sha256"] == hashlib.sha256(b"first").hexdigest()
    # a recorded value whose stat matches is read, not recomputed (the file is hashed once per model)
    (tmp_path / "selfimprove.json").write_text(json.dumps({**record, "weights_sha256": "recorded"}))
    assert weights_sha256(tmp_path) == "recorded"
    (tmp_path / "model.safetensors").write_bytes(b"second!")  # new weights: size and mtime differ
    os.utime(tmp_path / "model.safetensors", ns=(1, 1))
    assert weights_sha256(tmp_path) == hashlib.sha256(b"second!").hexdigest()


@pytest.mark.slow
def test_pretraining_records_the_weights(tmp_path):
    from selfimprove.tiny.config import PRESETS
    from selfimprove.tiny.pretrain import pretrain

    config = PRESETS["micro"].replace(steps=2)  # a few steps: the weights, not what they learned
    meta = pretrain(config, tmp_path, name="micro", progress=False, evaluate=False)
    saved = json.loads((tmp_path / "selfimprove.json").read_text())
    assert saved["weights_sha256"] == meta["weights_sha256"] == _sha(tmp_path / "model.safetensors")
    assert saved["fingerprint"] == config.fingerprint()  # the config's, beside it as before
    assert weights_sha256(tmp_path) == saved["weights_sha256"]


def test_hf_backend_weights_and_an_unchanged_fingerprint(tiny_random_model_dir):
    from selfimprove.backends.hf import HFBackend

    backend = HFBackend(str(tiny_random_model_dir))
    fingerprint = backend.fingerprint()
    assert backend.weights_sha256 == _sha(tiny_random_model_dir / "model.safetensors")
    assert backend.fingerprint() == fingerprint and fingerprint.startswith("hf-")  # the cache key as before
    in_memory = HFBackend.from_model(backend.model, backend.tokenizer, name=str(tiny_random_model_dir))
    assert in_memory.weights_sha256 is None  # its weights may have moved on from the files under that name


def test_eval_and_train_runs_record_the_weights(tiny_random_model_dir, tmp_path):
    from selfimprove.cli.main import main
    from selfimprove.store.runs import RunStore

    db, base = str(tmp_path / "runs.db"), _sha(tiny_random_model_dir / "model.safetensors")
    task = "arithmetic:n_train=8,n_dev=4,n_test=4"
    assert main(["eval", "--model", str(tiny_random_model_dir), "--task", task, "--limit", "2",
                 "--store", db]) == 0
    assert main(["train", "--model", str(tiny_random_model_dir), "--task", task, "--method", "no-filter",
                 "--rounds", "1", "--n", "2", "--train-limit", "2", "--eval-limit", "2", "--max-tokens", "8",
                 "--max-steps", "1", "--sft-lr", "1e-2", "--out", str(tmp_path / "run"), "--store", db]) == 0
    store = RunStore(db, readonly=True)
    configs = {r["command"]: store.get_run(r["id"])["config"] for r in store.list_runs()}
    assert configs["eval"]["model_weights_sha256"] == base
    assert configs["train"]["model_weights_sha256"] == base
    assert json.loads((tmp_path / "run/config.json").read_text())["model_weights_sha256"] == base
    train = json.loads((tmp_path / "run/round-1/train.json").read_text())
    assert train["weights_sha256"] == _sha(tmp_path / "run/round-1/model.safetensors") != base
