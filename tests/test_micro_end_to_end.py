"""The built-in path end to end on the micro model: pretrain (once per session) → one `selfimprove train`
round → `selfimprove eval` of the saved round model, all through the CLI that users run."""

from __future__ import annotations

import json

import pytest

from selfimprove.store.runs import RunStore
from selfimprove.tiny.pretrain import read_metadata
from selfimprove.training import eval_traces

TASK = "arithmetic:terms=2-3,digits=1-2"  # the micro preset's task


@pytest.mark.slow
@pytest.mark.parametrize("method", ["star", "rest-em", "lmsi", "easy-to-hard"])
def test_micro_pretrain_then_one_round_then_eval(method, micro_model_dir, tmp_path):
    from selfimprove.cli.main import main

    meta = read_metadata(micro_model_dir)
    assert meta["name"] == "micro" and meta["dev_greedy_accuracy"] is not None
    out, db = tmp_path / "run", tmp_path / "runs.db"
    assert main(["train", "--model", str(micro_model_dir), "--task", TASK, "--method", method, "--rounds",
                 "1",
                 "--k", "4", "--train-limit", "24", "--eval-limit", "24", "--max-steps", "3", "--batch-size",
                 "8", "--lr", "1e-3", "--patience", "5", "--out", str(out), "--store", str(db)]
                + (["--difficulty-splits", "terms=4"] if method == "easy-to-hard" else [])) == 0
    m1 = json.loads((out / "round-1" / "metrics.json").read_text())
    assert m1["train"]["rows"] > 0 and 1 <= m1["train"]["steps"] <= 3  # rows kept and trained on
    assert m1["eval"]["dev"]["n"] == 24
    if method == "easy-to-hard":  # pseudo-labels a pool disjoint from the evaluated terms=4 split
        assert m1["data"]["split"] == "train:terms=4" and m1["data"]["pool_disjoint"]
    model_dir = out / "round-1"  # the round's model is a loadable HF dir
    assert (model_dir / "config.json").exists() and (model_dir / "model.safetensors").exists()

    assert main(["eval", "--model", str(model_dir), "--task", TASK, "--split", "dev", "--limit", "24",
                 "--store", str(db)]) == 0
    store = RunStore(db)
    runs = {r["command"]: r for r in store.list_runs()}
    assert {"train", "eval"} <= set(runs)
    traces = store.traces(runs["eval"]["id"])
    assert len(traces) == 24
    # the standalone greedy eval of the saved round model reproduces the round's own dev evaluation, answer
    # for answer (the micro model gets few right, so compare what it answered, not just the accuracy)
    in_round = {t.example_id: t.final_answer for t in eval_traces(out, 1, "dev")}
    assert {t.example_id: t.final_answer for t in traces} == in_round
    assert sum(bool(t.correct) for t in traces) / 24 == pytest.approx(m1["eval"]["dev"]["accuracy"])
    assert len(set(in_round.values())) > 1  # not one constant output
