"""The DPO trainer (TRL DPOTrainer + per-pair weights) and the preference rounds on the tiny random model.

DPO: parameters change and the preferred log-ratio rises; the weighted trainer *is* TRL's DPO when every
weight is 1 (same batch, same loss and gradients), and with other weights its gradient equals the weighted
sum of TRL's per-pair gradients. The loop: the library's scripted double with real TRL training
gives exact ScPO pairs and weights, stored guards, chosen log-probabilities and resumable rounds; every
preference method runs one round on the random model (mechanics only: it is random)."""

from __future__ import annotations

import json
import re

import pytest

from selfimprove.backends.scripted import ScriptedCalculator
from selfimprove.tasks.arithmetic import ArithmeticTask

PAIRS = [{"prompt": f"{a}+{b}=", "chosen": f" #{a + b}", "rejected": f" #{a + b + 1}"} for a in range(5)
         for b in range(4)]


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_dpo_changes_parameters_and_raises_the_preferred_log_ratio(tiny_random_model_dir, tmp_path):
    from selfimprove.training.dpo import DPOResult, DPOSettings, train_dpo
    from selfimprove.training.sft import load_policy

    model, tok = load_policy(tiny_random_model_dir)
    before = _params(model)
    trained, res = train_dpo(model, tok, PAIRS, DPOSettings(lr=3e-3, batch_size=10, max_steps=10, epochs=5,
                                                            loss_type=("sigmoid",)), save_to=tmp_path / "out")
    assert res.steps == 10 and res.pairs == len(PAIRS) and len(res.losses) == 10
    assert res.logratio_after > res.logratio_before + 0.1, res.summary()
    assert res.losses[-1] < res.losses[0]
    assert all(m["rewards/accuracies"] >= 0 for m in res.trl_metrics) and "logps/chosen" in res.trl_metrics[0]
    changed = [k for k, v in trained.state_dict().items() if not (v == before[k]).all()]
    assert len(changed) == len(before)
    reloaded, _ = load_policy(tmp_path / "out")
    assert all((v == trained.state_dict()[k]).all() for k, v in reloaded.state_dict().items())
    assert DPOResult.from_dict(json.loads(json.dumps(res.summary()))) == res


def _trainers(model_dir, tmp_path, weights):
    """A WeightedDPOTrainer and a plain TRL DPOTrainer on identical copies of the model and the same pairs."""
    import datasets
    from trl import DPOTrainer

    from selfimprove.training.dpo import DPOSettings, WeightedDPOTrainer, dpo_config
    from selfimprove.training.sft import load_policy

    rows = [{**p, "weight": w} for p, w in zip(PAIRS, weights)]
    out = []
    for cls, data in ((WeightedDPOTrainer, rows), (DPOTrainer, [dict(p) for p in PAIRS[:len(weights)]])):
        model, tok = load_policy(model_dir)
        ref, _ = load_policy(model_dir)
        out.append(cls(model=model, ref_model=ref, args=dpo_config(DPOSettings(loss_type=("sigmoid",)),
                                                                    str(tmp_path)),
                       train_dataset=datasets.Dataset.from_list(data), processing_class=tok))
    return out


def _loss_and_grads(trainer, rows):
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, trainer.data_collator(rows))
    loss.backward()
    return float(loss), {n: p.grad.clone() for n, p in trainer.model.named_parameters()}


def test_weighted_loss_equals_plain_dpo_when_all_weights_are_one(tiny_random_model_dir, tmp_path):
    import torch

    weighted, plain = _trainers(tiny_random_model_dir, tmp_path, [1.0] * 4)
    batch = [weighted.train_dataset[i] for i in range(4)]
    lw, gw = _loss_and_grads(weighted, batch)
    lp, gp = _loss_and_grads(plain, [plain.train_dataset[i] for i in range(4)])
    assert lw == lp
    assert all(torch.equal(gw[n], gp[n]) for n in gp)
    # the gradient-scaling path itself (weights all 2): the loss value is unchanged, the gradient doubles
    doubled = [{**row, "weight": 2.0} for row in batch]
    l2, g2 = _loss_and_grads(weighted, doubled)
    assert l2 == pytest.approx(lp, abs=1e-7)
    assert all(torch.allclose(g2[n], 2 * gp[n], atol=1e-7, rtol=1e-5) for n in gp)


def test_weighted_gradient_is_the_weighted_sum_of_per_pair_dpo_gradients(tiny_random_model_dir, tmp_path):
    import torch

    weights = [2.0, 0.5, 0.0]
    weighted, plain = _trainers(tiny_random_model_dir, tmp_path, weights)
    _, gw = _loss_and_grads(weighted, [weighted.train_dataset[i] for i in range(3)])
    expected = {n: torch.zeros_like(g) for n, g in gw.items()}
    for i, w in enumerate(weights):  # TRL's plain DPO on pair i alone
        _, gi = _loss_and_grads(plain, [plain.train_dataset[i]])
        for n in expected:
            expected[n] += w * gi[n] / len(weights)
    for n in gw:
        assert torch.allclose(gw[n], expected[n], atol=1e-6, rtol=1e-4), n


def test_lora_dpo_merges_and_weighted_refusals(tiny_random_model_dir):
    from selfimprove.training.dpo import DPOSettings, train_dpo
    from selfimprove.training.sft import load_policy

    model, tok = load_policy(tiny_random_model_dir)
    settings = DPOSettings(lr=1e-2, batch_size=8, max_steps=3, epochs=3, lora=True, lora_r=4)
    trained, res = train_dpo(model, tok, PAIRS[:8], settings)
    assert res.lora and res.steps == 3 and not getattr(trained, "peft_config", None)
    assert res.chosen_logp_after is not None and res.loss_type == ("sigmoid", "sft")
    with pytest.raises(ValueError, match="sort the batch"):
        train_dpo(model, tok, [{**PAIRS[0], "weight": 0.5}], DPOSettings(loss_type=("aot",)))
    with pytest.raises(ValueError, match="at least one pair"):
        train_dpo(model, tok, [], DPOSettings())
    with pytest.raises(ValueError, match="loss_type must be"):
        DPOSettings(loss_type=("dpo",))


# ---- the preference rounds ------------------------------------------------------------------------------


def task() -> ArithmeticTask:
    return ArithmeticTask(n_train=12, n_dev=6, n_test=6)


def scripted(t: ArithmeticTask, rules=()) -> ScriptedCalculator:
    """The library's ``scripted`` model: half its samples wrong, wrong sample i off by i + 1 (no two wrong
    samples agree), hinted prompts solved to the hint, P(" yes") 0.8 after a right candidate and 0.3 after a
    wrong one (an exact judge). Seed 11: the first six train problems get 3, 0, 1, 3, 1, 2 right samples of
    4 (``n_right``). ``rules`` answer other prompts first (a judge's)."""
    return ScriptedCalculator(error_rate=0.5, seed=11, distinct_errors=True, rules=rules)


def n_right(t: ArithmeticTask, examples, n: int = 4) -> list[int]:
    """How many of the double's ``n`` samples of each example are right (its ``right`` says so)."""
    b = scripted(t)
    return [sum(b.right(t.prompt(e), i) for i in range(n)) for e in examples]


def wrong_text(t: ArithmeticTask, e, i: int) -> str:
    """The double's wrong sample i of ``e``: the worked solution with a final sum i + 1 too large."""
    return re.sub(r"#\d+$", "#" + t.encode(int(e.answer) + i + 1), t.solution(e))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def config(**values):
    from selfimprove.training.config import LoopConfig

    return LoopConfig.from_dict(values)


SMALL = {"train_limit": 6, "eval_limit": 3, "max_steps": 2, "batch_size": 4, "guard_limit": 3, "guard_k": 2}


def test_scpo_round_pairs_weights_guards_and_resume(tiny_random_model_dir, tmp_path):
    from selfimprove.training.loop import run_loop

    t = task()
    cfg = config(method="scpo", rounds=1, k=4, threshold=0.0, patience=None, **SMALL)
    run = tmp_path / "run"
    run_loop(cfg, t, tiny_random_model_dir, run, make_backend=lambda p: scripted(t), log=lambda m: None)
    pairs = read_jsonl(run / "round-1/pairs.jsonl")
    examples = t.examples("train")[:6]
    # c of 4 samples right, the wrong ones distinct: c >= 2 -> chosen = right (c votes), rejected = the first
    # wrong sample (1 vote), weight (c - 1) / 4; c <= 1 -> every answer has one vote: a tie, no pair
    b, rights = scripted(t), n_right(t, examples)
    assert {0, 1} & set(rights) and {2, 3} & set(rights) and 4 not in rights
    first_wrong = [next((i for i in range(4) if not b.right(t.prompt(e), i)), None) for e in examples]
    expected = [(e.id, t.solution(e), wrong_text(t, e, w), (c - 1) / 4)
                for e, c, w in zip(examples, rights, first_wrong) if c >= 2]
    assert [(p["example_id"], p["chosen"], p["rejected"], p["weight"]) for p in pairs] == expected
    assert all(p["judge"] == "majority-vote" and p["round_idx"] == 1
               and p["model"] == str(tiny_random_model_dir) and p["seed"] == 1 for p in pairs)
    data = json.loads((run / "round-1/data.json").read_text())
    assert (data["skipped"] == {"tied_majority": 6 - len(expected)}
            and data["pair_gold"]["both_right_order"] == 1)
    assert data["judge_guards_round"] == 0  # round 0's model judged and generated round 1's data
    g = json.loads((run / "round-0/metrics.json").read_text())["guards"]
    # the scripted judge is exact
    assert g["judge_agreement"]["rate"] == 1.0 and g["judge_agreement"]["n"] == 6
    assert g["injection"]["format"]["probes"] > 0 and g["injection"]["format"]["flipped"]["rate"] == 0.0
    train = json.loads((run / "round-1/train.json").read_text())
    steps = min(2, -(-2 * len(expected) // 4))  # ceil(epochs x pairs / batch), capped at max_steps
    assert train["objective"] == "dpo" and train["pairs"] == len(expected) and train["steps"] == steps
    assert train["chosen_logp_before"] is not None and train["chosen_logp_after"] is not None
    m = json.loads((run / "round-1/metrics.json").read_text())
    assert "gold_logp" in m["extra"]
    # resume: a second call with more rounds continues at round 2 and adds paired tests
    summary = run_loop(cfg.replace(rounds=2), t, tiny_random_model_dir, run,
                            make_backend=lambda p: scripted(t), log=lambda m: None)
    assert summary["rounds_done"] == 2 and [p["round"] for p in summary["paired"]] == [1, 2]
    assert (set(summary["paired_by_split"]) == {"dev"}
            and summary["paired_by_split"]["dev"] == summary["paired"])
    assert read_jsonl(run / "round-1/pairs.jsonl") == pairs
    # the guards are in every round's stored record (round 0 and the last round included), each of its own
    # model
    for r in range(3):
        g = json.loads((run / f"round-{r}/metrics.json").read_text())["guards"]
        assert g["round_model"] == r and g["probed"] == 3 and g["judge_agreement"]["n"] == 6
        guards0 = json.loads((run / "round-0/guards.json").read_text())
        assert g["length"]["baseline"] == guards0["length"]["mean"]
        assert {"injection", "exploration_exploitation", "answer_parse_failures",
                "judge_parse_failures"} <= set(g)


def test_a_crash_during_dpo_then_resume_keeps_the_round_data(tiny_random_model_dir, tmp_path, monkeypatch):
    """A run that dies in DPO training resumes at training: the round's samples, pairs and guards are read
    back, not generated again."""
    from selfimprove.training import dpo
    from selfimprove.training.loop import run_loop
    from selfimprove.training.methods import GoldDPO

    t = task()
    cfg = config(method="gold-dpo", rounds=1, k=4, patience=None, **SMALL)
    run = tmp_path / "run"

    def killed(*args, **kwargs):
        raise RuntimeError("killed during DPO")

    monkeypatch.setattr(dpo, "train_dpo", killed)
    with pytest.raises(RuntimeError, match="killed"):
        run_loop(cfg, t, tiny_random_model_dir, run, make_backend=lambda p: scripted(t), log=lambda m: None)
    assert json.loads((run / "state.json").read_text()) == {"round": 1, "phase": "select"}
    kept = {name: (run / f"round-{name}").read_bytes() for name in ("0/guards.json", "1/traces.jsonl",
                                                                     "1/pairs.jsonl", "1/data.json")}
    monkeypatch.undo()
    generated = []
    monkeypatch.setattr(GoldDPO, "collect", lambda *a, **k: generated.append(1) or [])
    summary = run_loop(cfg, t, tiny_random_model_dir, run, make_backend=lambda p: scripted(t),
                       log=lambda m: None)
    assert generated == [] and summary["rounds_done"] == 1
    assert {name: (run / f"round-{name}").read_bytes() for name in kept} == kept
    train = json.loads((run / "round-1/train.json").read_text())
    assert train["objective"] == "dpo" and train["pairs"] == len(read_jsonl(run / "round-1/pairs.jsonl")) > 0
    assert json.loads((run / "state.json").read_text()) == {"round": 1, "phase": "eval"}


@pytest.mark.parametrize("method", ["self-rewarding", "spin", "gold-dpo", "v-star", "cct"])
def test_each_method_one_round_with_the_scripted_judge(method, tiny_random_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from selfimprove.training.loop import run_loop

    t = task()
    cfg = config(method=method, rounds=1, k=4, **SMALL, **({"bon_n": 2} if method == "v-star" else {}))
    run = tmp_path / "run"
    run_loop(cfg, t, tiny_random_model_dir, run, make_backend=lambda p: scripted(t), log=lambda m: None)
    AutoModelForCausalLM.from_pretrained(run / "round-1")
    pairs, rows = read_jsonl(run / "round-1/pairs.jsonl"), read_jsonl(run / "round-1/rows.jsonl")
    examples = t.examples("train")[:6]
    split = [e for e, c in zip(examples, n_right(t, examples)) if 0 < c < 4]  # pools with right and wrong
    assert 0 < len(split) < 6
    extra = json.loads((run / "round-1/extra.json").read_text())
    if method == "self-rewarding":  # the exact judge: right (P(yes) high) vs wrong; all-wrong pools tie
        assert [p["example_id"] for p in pairs] == [e.id for e in split]
        gold = {e.id: e.answer for e in split}
        assert all(p["chosen_answer"] == gold[p["example_id"]] for p in pairs)
    elif method == "spin":  # reference vs the model's own (first) sample, unless identical
        b = scripted(t)
        assert {p["example_id"] for p in pairs} == {e.id for e in examples if not b.right(t.prompt(e), 0)}
        assert all(p["chosen"] == t.solution(next(e for e in examples if e.id == p["example_id"]))
                   for p in pairs)
    elif method in ("gold-dpo", "v-star"):
        assert {p["example_id"] for p in pairs} == {e.id for e in split}
        assert all(p["judge"] == "gold" for p in pairs)
    if method == "gold-dpo":
        assert len(pairs) == len(split)
    if method == "v-star":
        assert (run / "round-1/verifier/config.json").exists() and extra["best_of_n"]["verifier"] is not None
        assert {r["source"] for r in rows} == {"sample", "rationalised"}
    if method == "cct":
        assert {r["source"] for r in rows} == {"cct-solve", "cct-confidence", "cct-critique"}
        # review rows are written in the task's correct format: the reviewed answer " #<answer>"
        # (pretraining's)
        by_id = {e.id: e for e in examples}
        assert all(r["completion"] == f" #{t.encode(int(by_id[r['example_id']].answer))}"
                   for r in rows if r["source"] != "cct-solve")
        assert all(r["prompt"].endswith(" !") for r in rows if r["source"] != "cct-solve")
        assert set(extra["correction"]) >= {"cl", "cs", "rss", "unparsed_final"}
        # none dropped
        assert sum(extra["correction"]["transitions"].values()) == extra["correction"]["n"] == 3
        assert json.loads((run / "round-1/train.json").read_text())["objective"] == "sft"


def test_collapse_stop(tiny_random_model_dir, tmp_path, monkeypatch):
    from selfimprove.training import loop as loop_module
    from selfimprove.training.rundir import RunDir

    loop = loop_module.RoundLoop(config(method="scpo", patience=None), task(), tiny_random_model_dir,
                                 RunDir(tmp_path), log=lambda m: None)
    monkeypatch.setattr(loop_module, "round_metrics",
                        lambda path: [{"eval": {"dev": {"accuracy": a}}} for a in [0.6, 0.5, 0.4]])
    assert "collapse" in loop.stop_reason(3)
    monkeypatch.setattr(loop_module, "round_metrics",
                        lambda path: [{"eval": {"dev": {"accuracy": a}}} for a in [0.6, 0.5, 0.55]])
    assert loop.stop_reason(3) is None
    lmsi = loop_module.RoundLoop(config(method="lmsi", patience=None), task(), tiny_random_model_dir,
                                 RunDir(tmp_path), log=lambda m: None)
    assert lmsi.stop_reason(3) is None  # collapse_stop is a guard of the guarded methods


def test_train_cli_runs_a_preference_method_from_a_recipe(tiny_random_model_dir, tmp_path):
    from selfimprove.cli.main import main

    recipe = tmp_path / "scpo.toml"
    recipe.write_text(f"""model = "{tiny_random_model_dir}"
task = "arithmetic:n_train=8,n_dev=4,n_test=4"
method = "scpo"
rounds = 1
k = 2
train_limit = 4
eval_limit = 2
max_tokens = 12
max_steps = 1
guard_limit = 2
guard_k = 2
loss_type = ["sigmoid", "sft"]
""")
    code = main(["train", "--recipe", str(recipe), "--loss-type", "sigmoid", "--out", str(tmp_path / "run"),
                 "--store", str(tmp_path / "runs.db")])
    assert code == 0
    saved = json.loads((tmp_path / "run/config.json").read_text())
    # flag wins
    assert saved["loop"]["method"]["name"] == "scpo" and saved["loop"]["dpo"]["loss_type"] == ["sigmoid"]
    assert (saved["loop"]["n"] == 2 and saved["loop"]["guards"]["n"] == 2
            and saved["model"] == str(tiny_random_model_dir))
    assert json.loads((tmp_path / "run/state.json").read_text()) == {"round": 1, "phase": "eval"}
    recipe.write_text('method = "scpo"\nbogus = 1\n')
    assert main(["train", "--recipe", str(recipe), "--model", "x", "--task", "arithmetic"]) == 2


def test_self_rewarding_with_a_rubric_judge_and_meta_judge_pairs(tiny_random_model_dir, tmp_path):
    from selfimprove.training.loop import run_loop

    t = task()
    gold = {e.question: e.answer for e in t.examples("train")}

    def rubric(prompt: str, i: int):  # a rubric judge that knows the gold answers: 5 / 4 right, 1 / 2 wrong
        question = re.search(r"User: (.*)\n", prompt).group(1)
        response = re.search(r"<response>(.*)</response>", prompt, re.DOTALL).group(1)
        right = t.extract(response) == gold[question]
        if i == 0:
            return "Score: 5" if right else "Score: 1"
        return "ok. Score: 4" if right else "no. Score: 2"

    def pairwise(prompt: str, i: int):
        return "A" if "Score: 5" in prompt.split("<response B>")[0] else "B"

    backend = scripted(t, rules=[(r"Better response:$", pairwise), (r"Score: <total points>", rubric)])
    cfg = config(method="self-rewarding", judge="rubric", meta_judge=True, rounds=1, k=4,
                     **{**SMALL, "guard_limit": 0, "max_steps": 1})
    run = tmp_path / "run"
    run_loop(cfg, t, tiny_random_model_dir, run, make_backend=lambda p: backend, log=lambda m: None)
    pairs = read_jsonl(run / "round-1/pairs.jsonl")
    examples = t.examples("train")[:6]
    rights = n_right(t, examples)
    split = [e.id for e, c in zip(examples, rights) if 0 < c < 4]  # right vs wrong: 5 vs 1
    solved = [e.id for e, c in zip(examples, rights) if c > 0]  # the pool's top sample is right
    actor = [p for p in pairs if p["method"] == "self-rewarding"]
    meta = [p for p in pairs if p["method"] == "meta-judge"]
    assert [p["example_id"] for p in actor] == split and all(p["judge"] == "self:rubric" for p in actor)
    # the meta-judge prefers "Score: 5" in both orders (a right top sample); "Score: 1" vs "no. Score: 2"
    # (a wrong one) flips with the order: undecided
    assert [(p["example_id"], p["chosen"], p["rejected"]) for p in meta] == [(i, "Score: 5", "ok. Score: 4")
                                                                              for i in solved]
    data = json.loads((run / "round-1/data.json").read_text())
    assert data["meta"]["meta_judgements"] == 6 and data["meta"]["skipped"] == {"undecided": 6 - len(solved)}


@pytest.mark.parametrize("name", ["star", "no-filter", "self-rewarding", "scpo", "gold-dpo", "gold-dpo-plain",
                                  "spin", "v-star", "cct"])
def test_comparison_recipes_resolve_with_one_shared_budget(name):
    """Every recipe of the comparison builds a valid config, and all share the problems, samples, step budget,
    evaluation splits and the learning rate of their family (SFT or DPO) that dev chose."""
    import tomllib
    from pathlib import Path

    from selfimprove.cli.main import build_parser
    from selfimprove.cli.train import _load_recipe, build_config

    path = Path(__file__).resolve().parents[1] / "recipes" / f"{name}.toml"
    recipe = _load_recipe(str(path))
    assert recipe.pop("model") == "tiny" and recipe.pop("task") == "arithmetic:terms=2-4,digits=1-2"
    cfg = build_config(build_parser().parse_args(["train", "--recipe", str(path)]), ArithmeticTask(), recipe)
    assert cfg.method.name == tomllib.loads(path.read_text())["method"]
    assert (cfg.rounds, cfg.n, cfg.train_limit) == (3, 8, 330)
    for trainer in (cfg.sft, cfg.dpo):
        assert (trainer.max_steps, trainer.batch_size, trainer.epochs) == (40, 16, 2.0)
    assert cfg.eval_splits == ("test", "test-hard") and cfg.eval_limit == 500 and cfg.patience == 0
    assert cfg.sft.lr == 3e-5  # the SFT family's rate (star, no-filter, v-star's generator, cct)
    assert cfg.dpo.lr == 1e-5  # the DPO family's
    if cfg.method.guarded:
        assert cfg.guards.collapse_stop is False and cfg.guards.limit == 64
