"""The SFT trainer (TRL SFTTrainer): parameters change, loss falls, loss is on completions only, the saved
round loads, LoRA merges back into a plain model."""

from __future__ import annotations

import pytest

ROWS = [{"prompt": f"{a}+{b}=", "completion": f" #{a + b}"} for a in range(6) for b in range(4)]


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_sft_changes_parameters_and_loss_falls(tiny_random_model_dir, tmp_path):
    from selfimprove.training.sft import SFTSettings, load_policy, train_sft

    model, tok = load_policy(tiny_random_model_dir)
    before = _params(model)
    trained, result = train_sft(model, tok, ROWS, SFTSettings(lr=3e-3, batch_size=8, max_steps=30, epochs=20),
                                save_to=tmp_path / "out")
    assert result.steps == 30 and result.rows == len(ROWS) and len(result.losses) == 30
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < first - 0.5, result.losses
    changed = [k for k, v in trained.state_dict().items() if not (v == before[k]).all()]
    assert len(changed) == len(before)  # every tensor moved (embeddings are tied, so all get gradients)
    assert "forward" not in trained.__dict__  # TRL's fused-head patch is gone: plain generation again
    reloaded, _ = load_policy(tmp_path / "out")
    for k, v in reloaded.state_dict().items():
        assert (v == trained.state_dict()[k]).all()


def test_loss_is_on_completions_only(tiny_random_model_dir, tmp_path):
    import datasets
    from trl import SFTTrainer

    from selfimprove.training.sft import SFTSettings, load_policy, sft_config

    model, tok = load_policy(tiny_random_model_dir)
    trainer = SFTTrainer(model=model, args=sft_config(SFTSettings(), str(tmp_path), 1),
                         train_dataset=datasets.Dataset.from_list(
                             [{"prompt": "12+3=", "completion": " #15"}]),
                         processing_class=tok)
    ex = trainer.train_dataset[0]
    tokens = tok.convert_ids_to_tokens(ex["input_ids"])
    assert tokens == list("12+3= #15") + ["<eos>"]  # TRL's "<eos>" text became the special token
    assert ex["labels"][:5] == [-100] * 5 and ex["labels"][5:] == ex["input_ids"][5:]


def test_lora_trains_adapters_and_saves_a_merged_model(tiny_random_model_dir, tmp_path):
    from selfimprove.training.sft import SFTSettings, load_policy, train_sft

    model, tok = load_policy(tiny_random_model_dir)
    before = _params(model)
    trained, result = train_sft(model, tok, ROWS, SFTSettings(lr=1e-2, batch_size=8, max_steps=20, epochs=20,
                                                              lora=True, lora_r=4), save_to=tmp_path / "lora")
    assert result.lora and sum(result.losses[-3:]) < sum(result.losses[:3])
    assert not hasattr(trained, "peft_config") or not trained.peft_config  # merged: a plain model again
    reloaded, _ = load_policy(tmp_path / "lora")
    state = reloaded.state_dict()
    assert set(state) == set(before)
    assert any(not (state[k] == before[k]).all() for k in before)  # merged deltas landed in the weights


def test_sft_refuses_empty_data(tiny_random_model_dir):
    from selfimprove.training.sft import SFTSettings, train_sft

    with pytest.raises(ValueError, match="at least one row"):
        train_sft(tiny_random_model_dir, None, [], SFTSettings())
    with pytest.raises(ValueError, match="empty completion"):
        train_sft(tiny_random_model_dir, None, [{"prompt": "a", "completion": ""}], SFTSettings())


def test_settings_validation():
    from selfimprove.training.sft import SFTSettings

    with pytest.raises(ValueError, match="lr must be > 0"):
        SFTSettings(lr=-1)
    with pytest.raises(ValueError, match="scheduler must be one of"):
        SFTSettings(scheduler="warm")


def test_epochs_decide_the_steps_and_max_steps_caps_them():
    from selfimprove.training.sft import SFTSettings, planned_steps

    assert planned_steps(SFTSettings(epochs=2, batch_size=16, max_steps=40), 20) == 4  # not 40: no 20 epochs
    assert planned_steps(SFTSettings(epochs=2, batch_size=16, max_steps=40), 1000) == 40
    assert planned_steps(SFTSettings(epochs=0.5, batch_size=16, max_steps=-1), 100) == 4
