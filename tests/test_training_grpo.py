"""GRPO through TRL on the micro model: a couple of steps change the weights; the settings refuse bad values;
``train --method grpo`` / ``--method score`` run a round end to end with their guards in the round's metrics,
and a GRPO run killed with SIGKILL in the middle of a round's training resumes to the end."""

from __future__ import annotations

import pytest

from selfimprove.training.grpo import GRPOSettings, train_grpo


def test_settings_refuse_a_batch_that_is_not_whole_groups():
    with pytest.raises(ValueError, match="multiple of num_generations"):
        GRPOSettings(batch_size=6, num_generations=4)
    with pytest.raises(ValueError, match="trl_args may not set"):
        GRPOSettings(trl_args={"beta": 0.1})
    with pytest.raises(ValueError, match="reference must be"):
        GRPOSettings(reference="base")


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
                 "--method", "grpo", "--reward", "majority", "--min-share", "0.5", "--vote-pool", "6",
                 "--rl-max-steps", "1",
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
    g = m1["guards"]  # the round's guards, from the reward's gold checks and TRL's own log
    assert g["reward"] == "majority" and g["reads_gold"] is False
    assert 0.0 <= g["majority_wrong_share"] <= 1.0 and g["entropy"]["steps"] == 1 and g["entropy"]["last"] > 0
    assert g["kl_reference"] == "start" and g["kl"]["last"] >= 0  # beta 0.04 (default): TRL logs KL to start
    # length drift on a fixed probe (the first guards.limit dev problems), not on the training batch
    length = g["length"]
    assert length["probe"]["problems"] == 32 and length["n"] == 32 * 4 and length["baseline"] > 0
    assert length["drift"] == pytest.approx(length["mean"] - length["baseline"])
    assert g["batch_length"]["steps"] == 1  # TRL's own log of the batch's lengths, kept beside it
    assert train["sampled_tokens"] > 0 and m1["data"]["reads_gold"] is False
    # the separate voting pool: 6 samples per prompt drawn before training label both prompts
    assert rewards["pool_labelled"] == 2 and m1["data"]["pool_labels"]["examples"] == 2


FAST = ["--rl-max-steps", "1", "--rl-num-generations", "2", "--rl-batch-size", "4",
        "--rl-max-completion-length", "24", "--train-limit", "2", "--eval-limit", "3", "--patience", "0"]
MICRO_TASK = "arithmetic:terms=2-3,digits=1-2,n_train=8,n_dev=3,n_test=3"


@pytest.mark.slow
def test_train_method_score_runs_two_turns_with_transitions(micro_model_dir, tmp_path):
    import json

    from selfimprove.cli.main import main

    out = tmp_path / "run"
    assert main(["train", "--model", str(micro_model_dir), "--task", MICRO_TASK, "--method", "score",
                 "--rounds", "2", "--stage1-rounds", "1", "--first-n", "2", *FAST, "--rl-max-steps", "3",
                 "--out", str(out),
                 "--store", str(tmp_path / "runs.db")]) == 0
    for r, stage in ((1, 1), (2, 2)):
        m = json.loads((out / f"round-{r}" / "metrics.json").read_text())
        assert m["data"]["first_attempts"] == 4 and m["train"]["stage"] == stage  # 2 examples x first_n 2
        # 3 steps x 2 rows = each of the 6 rows (2 first-turn, 4 second-turn) once, 2 samples each
        t = m["guards"]["transitions"]  # the sampled second attempts against their first attempts
        assert sum(t.values()) == m["train"]["rewards"]["completions"] == 8
        assert set(m["extra"]["correction"]["transitions"]) == {"cc", "cw", "wc", "ww"}  # greedy on dev
    assert "correction" in json.loads((out / "round-0" / "metrics.json").read_text())["extra"]


@pytest.mark.slow
def test_grpo_killed_mid_round_resumes_to_the_end(micro_model_dir, tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from selfimprove.cli.main import main

    run, db = tmp_path / "run", tmp_path / "runs.db"
    argv = [sys.executable, "-m", "selfimprove.cli.main", "train", "--model", str(micro_model_dir),
            "--task", MICRO_TASK, "--method", "grpo", "--reward", "majority", "--rounds", "2",
            "--out", str(run), "--store", str(db), *FAST]
    env = {**os.environ, "SELFIMPROVE_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marker = run / "round-1" / "data.json"  # select is marked: the round's GRPO training starts now
    deadline = time.time() + 300
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "ended before it was killed:\n" + proc.stdout.read().decode()[-3000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = json.loads((run / "state.json").read_text())
    assert state["round"] == 1 and state["phase"] in ("generate", "select"), state  # killed during training
    assert not (run / "round-1" / "train.json").exists()

    assert main(["train", "--resume", str(run), "--store", str(db)]) == 0
    assert json.loads((run / "state.json").read_text()) == {"round": 2, "phase": "eval"}
    for r in (1, 2):
        m = json.loads((run / f"round-{r}" / "metrics.json").read_text())
        assert m["train"]["objective"] == "grpo" and m["train"]["steps"] == 1 and m["guards"]["entropy"]
        assert (run / f"round-{r}" / "model.safetensors").exists()
    assert [json.loads(x)["round"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2]


def test_the_viewer_plots_reward_accuracy_entropy_and_accuracy_of_an_rl_run():
    from selfimprove.view.training import _is_rl, rl_figure

    rounds = [{"round": 0, "eval": {"dev": {"accuracy": 0.5}}},
              {"round": 1, "eval": {"dev": {"accuracy": 0.6}},
               "guards": {"reward_accuracy": 0.7, "entropy": {"last": 0.4}}}]
    assert _is_rl(rounds) and not _is_rl(rounds[:1])  # an SFT run's rounds get no such figure
    assert rl_figure(rounds, "grpo").startswith(b"\x89PNG")


def test_collapse_stop_ends_an_rl_run_with_its_reason(tmp_path):
    from types import SimpleNamespace

    from selfimprove.training.config import LoopConfig
    from selfimprove.training.methods.grpo import collapse_reason
    from selfimprove.training.rundir import RunDir

    rd = RunDir(tmp_path)
    rd.write_json("round-1/guards.json", {"entropy": {"last": 0.004}})
    loop = SimpleNamespace(rd=rd, cfg=LoopConfig(method="grpo", rl=GRPOSettings(stop_entropy=0.01)))
    assert "policy entropy 0.0040 fell under rl.stop_entropy 0.01" in collapse_reason(loop, 2)
    loop.cfg = LoopConfig(method="grpo")  # stop_entropy 0 (default): entropy never stops the run
    assert collapse_reason(loop, 2) is None
