"""The built-in model: config validation, the pretraining stream, micro pretraining end to end, the cache."""

from __future__ import annotations

import itertools
import json

import pytest

from selfimprove.tiny import models
from selfimprove.tiny.config import PRESETS, TinyConfig
from selfimprove.tiny.pretrain import lr_at, read_metadata


@pytest.fixture(scope="module")
def micro(micro_model_dir):
    """The session's micro model (conftest): (home, model dir, metadata)."""
    return micro_model_dir.parent.parent, micro_model_dir, read_metadata(micro_model_dir)


def test_config_validates_with_a_how_to_fix_message():
    with pytest.raises(ValueError, match="multiple of heads"):
        TinyConfig(hidden=130, heads=4)
    with pytest.raises(ValueError, match="positive 'solve'"):
        TinyConfig(mix={"verify": 1.0})
    with pytest.raises(ValueError, match="lr"):
        TinyConfig(lr=5)


def test_fingerprint_tracks_training_fields_not_threads():
    c = TinyConfig()
    assert c.fingerprint() == TinyConfig(threads=1).fingerprint()
    assert c.fingerprint() != c.replace(steps=c.steps + 1).fingerprint()


def test_lr_schedule_warms_up_then_decays():
    c = TinyConfig(steps=100, lr=1e-3, warmup=0.1, final_lr_frac=0.1)
    lrs = [lr_at(s, c) for s in range(100)]
    assert lrs[0] < lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert lrs[-1] == pytest.approx(1e-4, rel=0.05)


def test_stream_masks_prompt_and_avoids_held_out_problems():
    from selfimprove.tiny.data import Stream
    from selfimprove.tiny.tokenizer import make_tokenizer

    tok = make_tokenizer()
    stream = Stream(PRESETS["micro"], tok.get_vocab(), tok.eos_token_id)
    for _ in range(300):
        prompt, completion = stream.text()
        ids, mask = stream.encode(prompt, completion)
        assert ids[-1] == tok.eos_token_id and sum(mask) == len(completion) + 1
        assert tok.decode(ids[:len(prompt)]) == prompt
    assert stream.held_out  # the dev/test/test-hard problems are excluded from the stream
    assert all(stream.problem().operands not in stream.held_out for _ in range(300))


@pytest.mark.slow
def test_micro_pretraining_learns_and_saves_a_loadable_model(micro):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfimprove.tasks.arithmetic import ArithmeticTask

    _, path, meta = micro
    assert meta["final_loss"] < 0.6 * meta["first_loss"]
    assert (json.loads((path / "selfimprove.json").read_text())["fingerprint"]
            == PRESETS["micro"].fingerprint())
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert tok.padding_side == "left" and tok.convert_tokens_to_ids("<eos>") == tok.eos_token_id
    assert tok("1<eos>").input_ids[-1] == tok.eos_token_id  # TRL appends EOS as text
    task = ArithmeticTask.from_options(PRESETS["micro"].task_options())
    prompts = [task.prompt(e) for e in task.examples("dev")[:4]]
    enc = tok(prompts, return_tensors="pt", padding=True)
    out = model.generate(**enc, max_new_tokens=40, do_sample=False, pad_token_id=tok.pad_token_id)
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    # It has learned the format: a running-sum scratchpad ending in an answer.
    assert sum(task.extract(t) is not None for t in texts) >= 3, texts


@pytest.mark.slow
def test_resolve_model_uses_the_cache(micro, monkeypatch):
    home, path, _ = micro
    import selfimprove.tiny.pretrain as pretrain_module

    def no_training(*args, **kwargs):
        raise AssertionError("the cached model should have been reused")

    monkeypatch.setattr(pretrain_module, "pretrain", no_training)
    assert models.resolve_model("micro", home_dir=home) == str(path)
    monkeypatch.setenv("SELFIMPROVE_HOME", str(home))
    assert models.resolve_model("micro") == str(path)


def test_resolve_model_passes_other_names_through(tmp_path):
    assert (models.resolve_model("Qwen/Qwen2.5-0.5B-Instruct", home_dir=tmp_path)
            == "Qwen/Qwen2.5-0.5B-Instruct")
    assert models.resolve_model(str(tmp_path), home_dir=tmp_path) == str(tmp_path)
    assert not (tmp_path / "models").exists()


def test_stale_cache_is_retrained(tmp_path, monkeypatch):
    import selfimprove.tiny.pretrain as pretrain_module

    calls = []

    def fake_pretrain(config, out_dir, **kwargs):
        calls.append(config.fingerprint())
        out_dir.mkdir(parents=True)
        (out_dir / "config.json").write_text("{}")
        meta = {"fingerprint": config.fingerprint()}
        (out_dir / "selfimprove.json").write_text(json.dumps(meta))
        return meta

    monkeypatch.setattr(pretrain_module, "pretrain", fake_pretrain)
    a = PRESETS["micro"]
    models.ensure_model("micro", a, home_dir=tmp_path, progress=False)
    models.ensure_model("micro", a, home_dir=tmp_path, progress=False)
    assert len(calls) == 1
    models.ensure_model("micro", a.replace(seed=5), home_dir=tmp_path, progress=False)
    assert len(calls) == 2
    assert (read_metadata(models.model_dir("micro", tmp_path))["fingerprint"]
            == a.replace(seed=5).fingerprint())
    assert not list(tmp_path.glob("models/.micro.tmp-*"))


def test_unknown_builtin_name_is_a_user_error(tmp_path):
    from selfimprove.errors import UserError

    with pytest.raises(UserError, match="built-in"):
        models.ensure_model("huge", home_dir=tmp_path)


@pytest.mark.slow
def test_cli_pretrain_reuses_the_cache(micro, capsys):
    from selfimprove.cli.main import main

    home, path, _ = micro
    assert main(["pretrain", "--name", "micro", "--home", str(home), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == str(path)
    assert main(["pretrain", "--name", "nope", "--home", str(home)]) == 2


def test_the_verify_format_field_keeps_format_1_fingerprints():
    # every number in the README was measured with tiny e0eede439cc0: adding a field must not retrain it
    assert PRESETS["tiny"].fingerprint() == "e0eede439cc0"
    v2 = PRESETS["tiny-verify"]
    assert v2.verify_format == 2 and v2.task_options()["verify"] == "2"
    assert v2.fingerprint() != v2.replace(verify_format=1).fingerprint()
    with pytest.raises(ValueError, match="verify_format"):
        TinyConfig(verify_format=3)


def test_eval_refuses_a_builtin_model_in_verify_formats_it_never_learned(tmp_path, capsys):
    from selfimprove.cli.main import main

    # refused before the model is resolved (nothing is pretrained here)
    assert main(["eval", "--model", "tiny-verify", "--task", "arithmetic", "--limit", "1",
                 "--store", str(tmp_path / "runs.db")]) == 2
    assert "arithmetic:verify=2" in capsys.readouterr().err


def test_train_and_eval_read_the_learned_format_from_a_model_dir(tmp_path):
    from selfimprove.cli.train import task_for_model
    from selfimprove.errors import UserError
    from selfimprove.tasks.arithmetic import ArithmeticTask

    d = tmp_path / "m"
    d.mkdir()
    (d / "selfimprove.json").write_text(json.dumps({"config": {"terms": [2, 4], "digits": [1, 2],
                                                               "verify_format": 2}}))
    assert task_for_model("arithmetic", d) == "arithmetic:terms=2-4,digits=1-2,verify=2"
    assert models.trained_verify_format(d) == 2 and models.trained_verify_format("tiny") == 1
    assert models.trained_verify_format(tmp_path) is None  # no metadata: not a built-in model's dir
    models.check_task_formats(d, ArithmeticTask(verify=2))
    with pytest.raises(UserError, match="verify=2"):
        models.check_task_formats(d, ArithmeticTask())


def test_the_tiny_training_stream_is_pinned():
    # the demo's numbers were measured with the model this stream trains; a format change for tiny-verify (or
    # any other) must not change a single character of it (hash of the first 2,000 texts, measured 2026-11-23)
    import hashlib

    from selfimprove.tiny.data import Stream
    from selfimprove.tiny.tokenizer import make_tokenizer

    tok = make_tokenizer()
    for salt, want in ((0, "8a1d408a9ffacb19"), (1, "c257fdaa4fd2ad59")):
        stream, h = Stream(PRESETS["tiny"], tok.get_vocab(), tok.eos_token_id, salt=salt), hashlib.sha256()
        for _ in range(2000):
            prompt, completion = stream.text()
            h.update((prompt + "\x00" + completion + "\x01").encode())
        assert h.hexdigest()[:16] == want
    v2 = Stream(PRESETS["tiny-verify"], tok.get_vocab(), tok.eos_token_id, salt=1)
    vocab = tok.get_vocab()
    texts = [v2.text() for _ in range(500)]
    assert all(ch in vocab for p, c in texts for ch in p + c)
    assert any(c.endswith(" | no") for _, c in texts) and any(c.endswith(" | yes") for _, c in texts)
