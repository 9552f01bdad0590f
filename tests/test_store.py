import os
import signal
import sqlite3
import subprocess
import sys
import time

from selfimprove.backends.scripted import ScriptedBackend
from selfimprove.records import Completion, SamplingParams, Trace
from selfimprove.store.runs import CachedBackend, RunStore


def test_store_roundtrip_and_wal(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    run_id = store.create_run("eval", {"model": "m", "limit": 3}, seed=7)
    t = Trace("e1", "greedy", final_answer="1", correct=True, prompt_tokens=5)
    store.add_traces(run_id, "greedy", [t], start=0)
    store.put_metrics(run_id, "greedy", {"accuracy": 1.0, "ci95": [0.5, 1.0]})
    run = store.get_run(run_id)
    assert run["config"] == {"model": "m", "limit": 3} and run["seed"] == 7 and run["version"]
    assert store.traces(run_id) == [t]
    assert store.metrics(run_id) == {"greedy": {"accuracy": 1.0, "ci95": [0.5, 1.0]}}
    # a duplicate trace is refused, not silently stored twice
    try:
        store.add_traces(run_id, "greedy", [t], start=0)
        raise AssertionError("duplicate accepted")
    except sqlite3.IntegrityError:
        pass


def test_cached_backend_reuses_deterministic_calls_only(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    inner = ScriptedBackend([(r"", ["a", "b", "c"])])
    backend = CachedBackend(inner, store)
    seeded = SamplingParams(n=3, temperature=1.0, seed=1)
    first = backend.generate(["p1", "p2"], seeded)
    again = backend.generate(["p1", "p2"], seeded)
    assert first == again and len(inner.calls) == 2 and backend.hits == 2
    backend.generate(["p1"], SamplingParams(n=3, temperature=1.0, seed=None))  # not cacheable
    backend.generate(["p1"], SamplingParams(n=3, temperature=1.0, seed=2))     # another seed: a miss
    assert len(inner.calls) == 4
    failing = CachedBackend(ScriptedBackend([(r"", [ScriptedBackend.FAIL])]), store)
    failing.generate(["x"], SamplingParams())
    assert failing.generate(["x"], SamplingParams())[0][0] == Completion(
        text="", finish_reason="error", prompt_tokens=1, error="scripted failure")
    assert failing.misses == 2  # the failure was not cached


def _eval_cmd(data, store, *extra):
    return [sys.executable, "-m", "selfimprove.cli.main", "eval", "--model", "scripted:delay=0.01",
            "--task", "jsonl", "--data", str(data), "--store", str(store), "--chunk", "3",
            "--strategy", "greedy", "--strategy", "self-consistency:n=4", *extra]


def _strip(traces):
    return [t.replace(info={k: v for k, v in t.info.items() if k != "wall_s"}) for t in traces]


def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(f'{{"id": "q{i}", "question": "What is {i} + {i * 3}?", "answer": {i * 4}}}\n'
                            for i in range(60)))
    env = {**os.environ, "SELFIMPROVE_HOME": str(tmp_path / "home")}
    # the uninterrupted reference run
    ref_store = tmp_path / "ref.db"
    subprocess.run(_eval_cmd(data, ref_store), check=True, capture_output=True, env=env)
    ref = RunStore(ref_store)
    ref_id = ref.list_runs()[0]["id"]

    store_path = tmp_path / "runs.db"
    proc = subprocess.Popen(_eval_cmd(data, store_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    store, reached = None, False
    deadline = time.time() + 600  # generous: on a loaded machine the imports alone can take a minute
    while time.time() < deadline and proc.poll() is None and not reached:
        time.sleep(0.05)
        if store_path.exists():
            store = store or RunStore(store_path)
            runs = store.list_runs()
            reached = bool(runs) and runs[0]["traces"] >= 75  # all of greedy and part of self-consistency
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert reached, f"the run never reached 75 stored traces before it was killed (exit {proc.returncode})"
    run_id = store.list_runs()[0]["id"]
    assert store.get_run(run_id)["status"] == "running"
    partial = len(store.traces(run_id))
    assert 60 < partial < 120, partial

    subprocess.run([sys.executable, "-m", "selfimprove.cli.main", "eval", "--resume", run_id,
                    "--store", str(store_path)], check=True, capture_output=True, env=env)
    resumed = RunStore(store_path)
    assert resumed.get_run(run_id)["status"] == "done"
    for scope in ("greedy", "self-consistency:n=4"):
        got, want = resumed.traces(run_id, scope), ref.traces(ref_id, scope)
        assert len(got) == 60 and len({t.example_id for t in got}) == 60
        assert _strip(got) == _strip(want)
    drop = lambda m: {s: {k: v for k, v in d.items() if k != "wall_s"} for s, d in m.items()}
    assert drop(resumed.metrics(run_id)) == drop(ref.metrics(ref_id))
