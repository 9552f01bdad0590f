"""GRPO through TRL on the micro model: a couple of steps change the weights; the settings refuse bad
values."""

from __future__ import annotations

import pytest

from selfimprove.training.grpo import GRPOSettings, train_grpo


def test_settings_refuse_a_batch_that_is_not_whole_groups():
    with pytest.raises(ValueError, match="multiple of num_generations"):
        GRPOSettings(batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match="trl_args may not set"):
        GRPOSettings(trl_args={"beta": 0.1})


@pytest.mark.slow
def test_two_grpo_steps_change_the_micro_model(micro_model_dir):
    import torch

    from selfimprove.training.sft import load_policy

    model, tok = load_policy(micro_model_dir)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    calls, seen = [], []

    def digits(prompts, completions, id, **kw):  # TRL passes the dataset column by name
        calls.append(list(id))
        seen.extend(completions)
        return [float(sum(map(ord, text)) % 7) for text in completions]  # any spread within a group

    rows = [{"prompt": f"Q: {a}+{b}=?\nA:", "id": f"e{a}{b}"} for a, b in ((1, 2), (3, 4))]
    settings = GRPOSettings(max_steps=2, num_generations=4, batch_size=8, max_completion_length=8, lr=1e-2,
                            temperature=3.0)  # hot: the micro model is sure of itself
    trained, res = train_grpo(model, tok, rows, [digits], settings)
    assert res.steps == 2 and len(res.rewards) == 2
    assert calls and all(len(c) == 8 for c in calls)  # the whole group of every prompt in one call
    assert all(c[i] == c[i - i % 4] for c in calls for i in range(8))  # a group's completions are adjacent
    changed = [k for k, v in trained.named_parameters() if not torch.equal(v.detach(), before[k])]
    assert changed, f"two GRPO steps left every parameter unchanged; completions: {seen}"


@pytest.mark.slow
def test_train_method_grpo_majority_one_round_on_the_micro_model(micro_model_dir, tmp_path):
    import json

    from selfimprove.cli.main import main

    out = tmp_path / "run"
    assert main(["train", "--model", str(micro_model_dir), "--task", "arithmetic:terms=2-3,digits=1-2",
                 "--method", "grpo", "--rl-reward", "majority", "--rl-min-share", "0.5", "--rl-max-steps",
                 "1",
                 "--rl-num-generations", "4", "--rl-batch-size", "8", "--rl-max-completion-length", "32",
                 "--rounds", "1", "--train-limit", "2", "--eval-limit", "4", "--patience", "5",
                 "--out", str(out), "--store", str(tmp_path / "runs.db")]) == 0
    m1 = json.loads((out / "round-1" / "metrics.json").read_text())
    train = m1["train"]
    assert train["objective"] == "grpo" and train["steps"] == 1
    rewards = train["rewards"]
    assert rewards["reward"] == "majority" and not rewards["reads_gold"] and rewards["min_share"] == 0.5
    assert rewards["prompts"] == 2 and rewards["completions"] == 8  # one step: 2 prompts x 4 samples
    assert rewards["voted"] + rewards["skipped"] == 2
    assert 0.0 <= rewards["reward_accuracy"] <= 1.0 and 1 <= rewards["distinct_per_group"] <= 4
    assert m1["eval"]["dev"]["n"] == 4 and (out / "round-1" / "model.safetensors").exists()
