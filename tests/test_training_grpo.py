"""GRPO through TRL on the micro model: a couple of steps change the weights; the settings refuse bad values."""

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
