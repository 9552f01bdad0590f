"""``selfimprove train`` from the command line, and its resume after SIGKILL: a run killed part-way (right
after round 1's data is generated) and resumed loses no record and repeats none."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    deadline = time.time() + 120
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
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
