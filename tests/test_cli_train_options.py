"""``selfimprove train``'s flags come from the typed config: every setting has a flag with its dataclass
default and docstring, every setting is reachable from a recipe, TRL options pass through, and a bad value is
refused before any model is loaded or pretrained."""

from __future__ import annotations

import dataclasses

import pytest

from selfimprove.cli.main import build_parser, main
from selfimprove.training.config import GuardSettings, LoopConfig
from selfimprove.training.methods import method_classes
from selfimprove.training.settings import DPOSettings, SFTSettings, TrainerSettings


def help_text(capsys) -> str:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_every_setting_has_a_flag_with_its_default(capsys):
    text = help_text(capsys)
    shared = {f.name for f in dataclasses.fields(TrainerSettings)}
    expect = [f"--{f.name}" for f in dataclasses.fields(LoopConfig) if f.name not in ("sft", "dpo", "guards")]
    expect += [f"--{n}" for n in shared - {"seed"}]
    expect += [f"--sft-{f.name}" for f in dataclasses.fields(SFTSettings) if f.name not in shared]
    expect += [f"--dpo-{f.name}" for f in dataclasses.fields(DPOSettings) if f.name not in shared]
    expect += [f"--guards-{f.name}" for f in dataclasses.fields(GuardSettings)]
    expect += [f"--{f.name}" for cls in method_classes().values() for f in dataclasses.fields(cls)]
    missing = [flag for flag in expect if flag.replace("_", "-") not in text]
    assert not missing
    # the defaults shown are the dataclasses' (one declaration each), e.g.
    assert "Peak learning rate. 3e-5 suits the built-in tiny model" in text and "(default: 3e-05)" in text
    assert f"(default: {SFTSettings().max_steps})" in text and "--n INT, --k INT" in text


def test_every_setting_is_reachable_from_a_recipe():
    """A changed value for every numeric and boolean setting, nested as a recipe writes it, arrives in the
    config."""
    def changed(f):
        value = f.default
        if isinstance(value, bool):
            return not value
        if isinstance(value, int):
            return value + 1
        if isinstance(value, float):
            return value + 0.25
        return None

    recipe, expect = {}, []
    for key, cls in (("sft", SFTSettings), ("dpo", DPOSettings), ("guards", GuardSettings)):
        for f in dataclasses.fields(cls):
            if (v := changed(f)) is not None:
                recipe.setdefault(key, {})[f.name] = v
                expect.append((key, f.name, v))
    for f in dataclasses.fields(LoopConfig):
        if (v := changed(f)) is not None and f.name not in ("top_p",):
            recipe[f.name] = v
            expect.append((None, f.name, v))
    for name, cls in method_classes().items():
        options = {f.name: changed(f) for f in dataclasses.fields(cls) if changed(f) is not None}
        options = {k: v for k, v in options.items() if k not in ("meta_judge", "threshold")}
        extra = {"difficulty_splits": ["terms=6"]} if name == "easy-to-hard" else \
            {"reward": "majority"} if name == "grpo" else {}  # grpo's vote_pool needs a majority reward
        cfg = LoopConfig.from_dict({"method": {"name": name, **options, **extra}})
        assert {k: getattr(cfg.method, k) for k in options} == options
    cfg = LoopConfig.from_dict(recipe)
    for group, name, value in expect:
        assert getattr(getattr(cfg, group) if group else cfg, name) == value, (group, name)


def test_trl_args_pass_through_to_the_trainer_config_and_unknown_ones_are_refused():
    from selfimprove.cli.train import build_config
    from selfimprove.errors import UserError
    from selfimprove.tasks.arithmetic import ArithmeticTask
    from selfimprove.training.sft import planned_steps, sft_config

    args = build_parser().parse_args(
        ["train", "--trl-args", "gradient_accumulation_steps=2", "max_grad_norm=0.5"])
    cfg = build_config(args, ArithmeticTask())
    assert cfg.sft.trl_args == cfg.dpo.trl_args == {"gradient_accumulation_steps": 2, "max_grad_norm": 0.5}
    trl = sft_config(cfg.sft, "/tmp/unused", 64)
    assert trl.gradient_accumulation_steps == 2 and trl.max_grad_norm == 0.5
    assert planned_steps(cfg.sft, 64) == 2 * 64 // (16 * 2)  # epochs x rows / (batch x accumulation)
    with pytest.raises(UserError, match="not an option of TRL's SFTConfig"):
        build_config(build_parser().parse_args(["train", "--trl-args", "no_such_option=1"]), ArithmeticTask())
    with pytest.raises(UserError, match="may not set learning_rate"):
        build_config(build_parser().parse_args(["train", "--trl-args", "learning_rate=1"]), ArithmeticTask())


@pytest.mark.parametrize("argv, needle", [
    (["--k", "0"], "--n/--k must be >= 1"), (["--method", "scpo", "--rationalize"], "rationalize"),
    (["--sft-lr", "0"], "lr must be > 0"), (["--guards-n", "0"], "must be >= 1"),
    (["--reuse-start", "/no/such/run-dir"], "no such run directory"),
])
def test_a_bad_value_is_refused_before_the_model_is_pretrained(argv, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SELFIMPROVE_HOME", str(tmp_path / "home"))
    code = main(
        ["train", "--model", "tiny", "--task", "arithmetic", "--store", str(tmp_path / "runs.db"), *argv])
    assert code == 2 and needle in capsys.readouterr().err
    assert not (tmp_path / "home" / "models").exists()  # nothing was pretrained


def test_the_demo_recipe_resolves_to_the_settings_its_numbers_were_measured_with():
    """recipes/demo.toml in the nested shape gives every arm the run the demo's results were measured with
    (before the move: LoopConfig(rounds=2, k=8, temperature=0.8, train_limit=500, max_steps=80, lr=3e-5,
    patience=3) with LoopConfig's defaults epochs=2.0, batch_size=16, max_length=512, max_tokens=128)."""
    from selfimprove.cli.demo import load_recipe

    recipe = load_recipe(None)
    assert recipe["arms"] == ["lmsi", "no-filter", "star"] and recipe["sc_n"] == 16
    for arm in recipe["arms"]:
        cfg = LoopConfig.from_dict({**recipe["loop"], "method": arm, "seed": 0, "eval_limit": 500,
                                    "eval_splits": ("test", "test-hard")})
        assert (cfg.rounds, cfg.n, cfg.temperature, cfg.top_p, cfg.train_limit, cfg.patience, cfg.max_tokens,
                cfg.rotate) == (2, 8, 0.8, 1.0, 500, 3, 128, True)
        sft = cfg.sft
        assert (sft.lr, sft.max_steps, sft.epochs, sft.batch_size, sft.max_length, sft.scheduler, sft.lora,
                sft.trl_args) == (3e-5, 80, 2.0, 16, 512, "constant", False, {})
    assert cfg.method.options() == {"rationalize": True, "rationalize_n": 1, "rationalize_temperature": 0.0,
                                    "max_per_example": 4}


def test_a_demo_recipe_table_adds_to_the_fallback_key_by_key(tmp_path):
    from selfimprove.cli.demo import load_recipe

    path = tmp_path / "demo.toml"
    path.write_text("[loop.sft]\nlr = 1e-4\n")
    assert load_recipe(str(path))["loop"]["sft"] == {"max_steps": 80, "lr": 1e-4}
