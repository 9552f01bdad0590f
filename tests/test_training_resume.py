"""``selfimprove train`` from the command line, and its resume after SIGKILL: a run killed part-way (right
after round 1's data is generated) and resumed loses no record and repeats none; a finished run resumed with
more ``--rounds`` continues past its last round."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfimprove.cli.main import main

TASK = "arithmetic:n_train=12,n_dev=6,n_test=6"
FAST = ["--train-limit", "6", "--eval-limit", "3", "--max-tokens", "20", "--max-steps", "3", "--batch-size",
        "4",
        "--patience", "0"]


def read_jsonl(path: Path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_train_help_has_an_example(capsys):
    try:
        main(["train", "--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    assert "selfimprove train --model tiny --task arithmetic --method lmsi" in out and "--resume" in out


def test_train_without_model_is_a_user_error(capsys, tmp_path):
    assert main(["train", "--task", TASK, "--store", str(tmp_path / "runs.db")]) == 2
    assert "needs --model and --task" in capsys.readouterr().err


def test_sigkill_then_resume_loses_and_repeats_nothing(tiny_random_model_dir, tmp_path):
    from selfimprove.store.runs import RunStore

    run, db = tmp_path / "run", tmp_path / "runs.db"
    argv = [sys.executable, "-m", "selfimprove.cli.main", "train", "--model", str(tiny_random_model_dir),
            "--task", TASK, "--method", "no-filter", "--rounds", "2", "--out", str(run), "--store", str(db),
            *FAST]
    env = {**os.environ, "SELFIMPROVE_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marker = run / "round-1" / "traces.jsonl"

    def generated_round_1() -> bool:  # the phase is done when state.json says so, not when its file appears
        try:
            state = json.loads((run / "state.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return False
        return state["round"] >= 1

    deadline = time.time() + 600  # generous: a loaded machine
    while not generated_round_1() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, ("the run ended before it could be killed:\n"
                                 + proc.stdout.read().decode()[-3000:])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert marker.exists(), proc.stdout.read().decode()[-3000:]
    killed_at = json.loads((run / "state.json").read_text())
    assert killed_at["round"] <= 1 and not (killed_at["round"] == 1 and killed_at["phase"] == "eval")
    generated = marker.read_bytes()

    run_id = json.loads((run / "config.json").read_text())["run_id"]
    assert main(["train", "--resume", str(run), "--store", str(db)]) == 0
    assert marker.read_bytes() == generated  # round 1's data was kept, not regenerated
    assert json.loads((run / "state.json").read_text()) == {"round": 2, "phase": "eval"}
    for r in (1, 2):
        traces, rows = read_jsonl(run / f"round-{r}/traces.jsonl"), read_jsonl(run / f"round-{r}/rows.jsonl")
        assert sorted(t["example_id"] for t in traces) == sorted({t["example_id"] for t in traces})
        assert len(traces) == 6 and [x["example_id"] for x in rows] == [t["example_id"] for t in traces]
    assert [m["round"] for m in read_jsonl(run / "metrics.jsonl")] == [0, 1, 2]
    assert not list(run.rglob(".*tmp*"))
    store = RunStore(db)
    for scope, n in (("round-1/generate", 6), ("round-2/generate", 6), ("round-1/eval/dev", 3),
                     ("round-2/eval/test-hard", 3)):
        assert len(store.traces(run_id, scope)) == n, scope
    assert store.get_run(run_id)["status"] == "done"

    # resuming a finished run by its store id changes nothing
    before = {p: p.read_bytes() for p in run.rglob("*.jsonl")}
    assert main(["train", "--resume", run_id, "--store", str(db)]) == 0
    assert {p: p.read_bytes() for p in run.rglob("*.jsonl")} == before


@pytest.mark.slow
def test_resume_with_more_rounds_continues_a_finished_run(tiny_random_model_dir, tmp_path, capsys):
    """A finished 1-round run resumed with --rounds 2 trains round 2 from round 1's model without touching
    round 1; other settings must still match (a mismatch names its flag), and fewer rounds are refused."""
    from selfimprove.store.runs import RunStore

    run, db = tmp_path / "run", tmp_path / "runs.db"
    base = ["train", "--model", str(tiny_random_model_dir), "--task", TASK, "--method", "no-filter", "--out",
            str(run), "--store", str(db), *FAST]
    assert main([*base, "--rounds", "1"]) == 0
    run_id = json.loads((run / "config.json").read_text())["run_id"]
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and "round-1" in p.parts}
    capsys.readouterr()
    refused = ((["--rounds", "2", "--n", "4"], "--n"), (["--rounds", "2", "--sft-lr", "0.1"], "--sft-lr"),
               (["--rounds", "0"], "--rounds"))
    for flags, field in refused:
        assert main(["train", "--resume", str(run), "--store", str(db), *flags]) == 2
        assert field in capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["loop"]["rounds"] == 1  # refused: nothing changed

    assert main(["train", "--resume", run_id, "--store", str(db), "--rounds", "2"]) == 0
    assert "adding round(s) 2..2 to a run of 1 round(s)" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in before} == before  # round 1 kept, not repeated
    assert json.loads((run / "state.json").read_text()) == {"round": 2, "phase": "eval"}
    assert json.loads((run / "round-2/train.json").read_text())["start_round"] == 1
    assert [m["round"] for m in read_jsonl(run / "metrics.jsonl")] == [0, 1, 2]
    saved = json.loads((run / "config.json").read_text())
    assert saved["loop"]["rounds"] == 2 and saved["rounds_history"] == [1, 2]
    store = RunStore(db)
    assert store.get_run(run_id)["status"] == "done" and len(store.traces(run_id, "round-2/generate")) == 6
    store.close()
    # a later plain resume keeps the new count (nothing left to do); fewer than it now has is refused
    assert main(["train", "--resume", str(run), "--store", str(db)]) == 0
    assert main(["train", "--resume", str(run), "--store", str(db), "--rounds", "1"]) == 2
    assert "fewer than the 2 round(s)" in capsys.readouterr().err
