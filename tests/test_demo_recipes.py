"""``selfimprove demo --recipe``: the recipes resolve through the typed configs and registries before any
model is loaded — the default (tiny, arithmetic) exactly as before, ``recipes/demo-smollm2.toml`` (the
built-in real model, word problems, LoRA with the real-model defaults) — and the compact recipe runs end to
end on smollm2 with a few examples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import REPO

from selfimprove.cli.demo import load_recipe, plan
from selfimprove.errors import UserError

SMOLLM2 = str(REPO / "recipes" / "demo-smollm2.toml")


def test_the_default_recipe_plans_the_tiny_demo_as_before():
    from selfimprove.tasks.arithmetic import ArithmeticTask
    from selfimprove.tiny import PRESETS

    p = plan(load_recipe(None))
    # no real-model defaults for a character model
    assert (p.model, p.options, p.defaults) == ("tiny", {"max_batch_tokens": 131072}, {})
    assert p.task.describe() == ArithmeticTask.from_options(PRESETS["tiny"].task_options()).describe()
    assert p.splits == ("dev", "test", "test-hard") and list(p.configs) == ["lmsi", "no-filter", "star"]
    cfg = p.configs["lmsi"]
    assert (cfg.eval_splits, cfg.eval_limit, cfg.sft.lr, cfg.sft.lora, cfg.max_tokens) == (
        ("test", "test-hard"), 500, 3e-5, False, 128)


def test_the_smollm2_recipe_plans_a_real_model_run_with_lora_and_its_control():
    p = plan(load_recipe(SMOLLM2), SMOLLM2)
    assert (p.model, p.options) == ("smollm2", {})
    assert p.task.name == "word-problems" and p.splits == ("dev", "test")  # no harder split on this task
    assert p.task.shots == 4  # worked examples: short replies, and a prompt prefix shared by every problem
    assert list(p.configs) == ["star", "no-filter"]
    for cfg in p.configs.values():
        assert (cfg.rounds, cfg.n, cfg.train_limit, cfg.eval_limit, cfg.max_tokens, cfg.eval_splits) == (
            1, 4, 16, 24, 32, ("test",))
        sft = cfg.sft  # LoRA, steps, batch: the recipe; lr, row length: train's real-model defaults
        assert (sft.lora, sft.max_steps, sft.lr, sft.batch_size, sft.max_length) == (True, 4, 1e-4, 4, 768)
    assert p.defaults["lr"] == 1e-4


def _recipe(tmp_path, text: str) -> str:
    path = tmp_path / "r.toml"
    path.write_text(Path(SMOLLM2).read_text() + text)
    return str(path)


def test_an_unknown_recipe_key_is_refused(tmp_path):
    path = _recipe(tmp_path, "\n[x]\n")
    with pytest.raises(UserError, match=re.escape("unknown recipe key(s) ['x']")):
        plan(load_recipe(path), path)


@pytest.mark.parametrize("key, value, needle", [
    ("test_split", '"dev"', "test_split must be a held-out"),
    ("test_split", '"nope"', "has splits train, dev, test"),
    ("task", '"word-problems:max_value=5"', "max_value must be in 10..10000"),
    ("model", '"smollm2:temp=1"', "unknown model option(s) ['temp']"),
    ("eval_limit", '"40"', "expected int"),
    ("sc_n", "-1", "sc_n >= 0"),
])
def test_bad_values_are_refused_before_the_model_is_loaded(tmp_path, key, value, needle):
    text = re.sub(rf"^{key} = .*$", f"{key} = {value}", Path(SMOLLM2).read_text(), flags=re.MULTILINE)
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=re.escape(needle)):
        plan(load_recipe(str(path)), str(path))


def test_backend_options_in_the_model_spec_are_kept_apart():
    recipe = {**load_recipe(SMOLLM2), "model": "smollm2:chat=false"}
    assert plan(recipe).options == {"chat": False} and plan(recipe).model == "smollm2"


@pytest.mark.long
def test_the_smollm2_recipe_runs_end_to_end_on_a_few_examples(smollm2_dir, tmp_path, monkeypatch, capsys):
    """The compact recipe with its sizes cut to a few examples: every section runs on the real model (the
    control arm only: it trains on whatever the model said, so a LoRA step is certain to run; STaR on three
    problems may keep no row)."""
    from selfimprove.cli.main import main

    text = Path(SMOLLM2).read_text()
    for key, value in (("eval_limit", 2), ("sc_n", 2), ("train_limit", 2), ("n", 2), ("max_tokens", 16),
                       ("max_steps", 1)):
        text = re.sub(rf"^{key} = \d+", f"{key} = {value}", text, flags=re.MULTILINE)
    text = text.replace('arms = ["star", "no-filter"]', 'arms = ["no-filter"]')
    path = tmp_path / "demo.toml"
    path.write_text(text)
    monkeypatch.setenv("SELFIMPROVE_HOME", str(Path(smollm2_dir).parent.parent))
    code = main(["demo", "--recipe", str(path), "--out", str(tmp_path / "out"), "--store",
                 str(tmp_path / "runs.db")])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "converted from" in out.err and "real-model defaults" in out.err
    assert "greedy" in out.out and "self-consistency" in out.out and "no-filter r1 vs r0" in out.out
    page = Path(re.findall(r"report: (\S+\.html)", out.out)[-1]).read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "no-filter r1 vs r0" in page
    train = json.loads((tmp_path / "out" / "no-filter" / "round-1" / "train.json").read_text())
    assert train["lora"] and train["steps"] == 1 and train["rows"] == 2
