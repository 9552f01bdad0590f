"""Failure is data: failed requests are a status (never an answer), runs with them end 'incomplete' (exit 3),
``--resume`` retries exactly them, empty completions are counted, deadlines are the user's, and training
refuses a round that lost too many requests. Against a real HTTP server (``fake_openai_server``)."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from fake_openai_server import FakeOpenAIServer

from selfimprove.backends.deadlines import retry_policy
from selfimprove.backends.openai_compat import OpenAICompatBackend, RetryPolicy
from selfimprove.cli.main import main
from selfimprove.errors import EXIT_INCOMPLETE, RunIncomplete, UserError
from selfimprove.records import Completion, SamplingParams, Step, Trace

QUESTIONS = ["aaaaaa", "bbbbbb", "cccccc", "dddddd"]
TASK = "jsonl:kind=text,template={question}"
"""The fake server answers '<' + prompt[-6:] + ':0>' to a greedy prompt: the gold is that text for the first
two questions (right) and something else for the others (wrong), so accuracy on a healthy server is 0.5."""


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "qa.jsonl"
    rows = [{"id": f"e{i}", "question": q, "answer": f"<{q}:0>" if i < 2 else "nope"}
            for i, q in enumerate(QUESTIONS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def spec(server, extra: str = "retries=0") -> str:
    return f"openai:{server.url}@fake-model,{extra}"


def eval_args(server, data, store, *strategies, extra="retries=0"):
    return ["eval", "--model", spec(server, extra), "--task", TASK, "--data", str(data), "--store",
            str(store),
            *[a for s in strategies or ("greedy",) for a in ("--strategy", s)]]


def stored(store):
    db = sqlite3.connect(store)
    run_id, status = db.execute("SELECT id, status FROM runs ORDER BY created DESC, rowid DESC").fetchone()
    metrics = {(s, n): json.loads(v) for s, n, v in db.execute("SELECT scope, name, value FROM metrics "
                                                                 "WHERE run_id = ?", (run_id,))}
    traces = {(s, e): json.loads(d) for s, e, d in db.execute("SELECT scope, example_id, data FROM traces "
                                                                "WHERE run_id = ?", (run_id,))}
    db.close()
    return run_id, status, metrics, traces


@pytest.mark.parametrize("action", [500, 429, 401, "html", "truncated", "empty", "schema"])
def test_a_server_that_always_fails_gives_an_incomplete_run_not_zeros(server, data, tmp_path, capsys, action):
    server.reset(script=[action] * 200)
    store = tmp_path / "runs.db"
    assert main(eval_args(server, data, store)) == EXIT_INCOMPLETE == 3
    run_id, status, metrics, traces = stored(store)
    assert status == "incomplete"
    assert metrics["greedy", "errors"] == 4 and metrics["greedy", "unparsed"] == 0
    assert metrics["greedy", "accuracy"] is None and metrics["greedy", "scored"] == 0
    for t in traces.values():  # stored, with the failure recorded and nothing scored
        assert t["status"] == "error" and t["correct"] is None and t["final_answer"] is None
        c = t["steps"][0]["completions"][0]
        assert c["finish_reason"] == "error" and c["error"] and t["steps"][0]["answers"] == [None]
    out = capsys.readouterr()
    assert "errors" in out.out and "4/4" in out.out
    assert f"--resume {run_id}" in out.err


def test_resume_against_a_healthy_server_retries_exactly_the_failures_and_matches(server, data, tmp_path):
    strategies = ("greedy", "self-consistency:n=3")
    server.reset(by_prompt={QUESTIONS[1]: [503] * 50, QUESTIONS[2]: ["reset"] * 50})
    broken = tmp_path / "broken.db"
    assert main(eval_args(server, data, broken, *strategies)) == 3
    run_id, status, metrics, _ = stored(broken)
    assert status == "incomplete"
    assert metrics["greedy", "errors"] == 2 and metrics["self-consistency:n=3", "errors"] == 2
    assert metrics["greedy", "scored"] == 2 and metrics["greedy", "accuracy"] == 0.5  # 1 of 2 answered

    server.reset()  # healthy now; new deadlines are not a different model, so --model may change them
    assert main(
        ["eval", "--resume", run_id, "--store", str(broken), "--model", spec(server, "retries=2")]) == 0
    sent = {r["body"].get("prompt") for r in server.requests} & set(QUESTIONS)  # start-up probes aside
    assert sent == {QUESTIONS[1], QUESTIONS[2]}  # only the failed examples were asked again
    _, status, resumed, resumed_traces = stored(broken)

    server.reset()
    clean = tmp_path / "clean.db"
    assert main(eval_args(server, data, clean, *strategies)) == 0
    _, _, uninterrupted, clean_traces = stored(clean)
    assert status == "done"
    skip = {"wall_s"}
    assert {k: v for k, v in resumed.items() if k[1] not in skip} == \
           {k: v for k, v in uninterrupted.items() if k[1] not in skip}
    assert resumed["greedy", "accuracy"] == 0.5 and resumed["greedy", "errors"] == 0

    def strip(t):
        return {k: v for k, v in t.items() if k != "info"}

    assert {k: strip(t) for k, t in resumed_traces.items()} == {k: strip(t) for k, t in clean_traces.items()}


def test_an_empty_completion_is_recorded_and_counted(server, data, tmp_path):
    server.reset(by_prompt={QUESTIONS[0]: [("text", "")] * 5})
    store = tmp_path / "runs.db"
    assert main(eval_args(server, data, store)) == 0  # an empty answer is the model's answer, not a failure
    _, status, metrics, traces = stored(store)
    assert status == "done" and metrics["greedy", "errors"] == 0
    assert metrics["greedy", "empty"] == 1 and metrics["greedy", "unparsed"] == 1
    c = traces["greedy", "e0"]["steps"][0]["completions"][0]
    assert c["text"] == "" and c["finish_reason"] == "stop" and not traces["greedy", "e0"]["correct"]
    assert Completion(text=" \n").empty and not Completion(text="", finish_reason="error").empty


def test_a_stalled_server_ends_within_the_deadline(server):
    server.reset(script=[("stall", 30)] * 20)
    t0 = time.monotonic()
    backend = OpenAICompatBackend.from_spec(f"openai:{server.url}@fake-model,timeout=1,retries=1")
    probe_s = time.monotonic() - t0
    assert backend.retry.read_timeout == 1 and backend.retry.max_attempts == 2
    assert backend.info["probe"].startswith("failed") and probe_s < 2 * 1 + 2  # the probe obeys the deadline
    t0 = time.monotonic()
    out = backend.generate(["stalled"], SamplingParams())
    took = time.monotonic() - t0
    assert took < 2 * 1 + 1.5, took  # 2 attempts x 1 s, plus one backoff sleep (<= 0.5 s)
    assert not out[0][0].ok and "timeout" in out[0][0].error and "2 attempt" in out[0][0].error


def test_a_stalled_server_in_a_cli_run_is_a_recorded_failure(server, data, tmp_path):
    server.reset(script=[("stall", 30)] * 40)
    store = tmp_path / "runs.db"
    t0 = time.monotonic()
    assert main(eval_args(server, data, store, extra="timeout=1,retries=0")) == 3
    # each of the 4 requests would stall 30 s without the 1 s deadline; 25 s leaves room for a loaded machine
    assert time.monotonic() - t0 < 25
    _, status, metrics, _ = stored(store)
    assert status == "incomplete" and metrics["greedy", "errors"] == 4


def test_deadlines_from_spec_and_environment():
    env = {"SELFIMPROVE_TIMEOUT": "7", "SELFIMPROVE_RETRIES": "4", "SELFIMPROVE_TOTAL_TIMEOUT": "60"}
    p = retry_policy(RetryPolicy(), {}, env)
    assert (p.connect_timeout, p.read_timeout, p.max_attempts, p.total_timeout) == (7, 7, 5, 60)
    p = retry_policy(RetryPolicy(), {"timeout": "3", "retries": "0", "read_timeout": "9"}, env)
    assert (p.connect_timeout, p.read_timeout, p.max_attempts, p.total_timeout) == (3, 9, 1, 60)  # spec wins
    assert retry_policy(RetryPolicy(), {}, {}) == RetryPolicy()
    for options, environ, field in [({"timeout": "0"}, {}, "timeout"), ({"timeout": "nan"}, {}, "timeout"),
                                    ({"retries": "-1"}, {}, "retries"), ({"retries": "two"}, {}, "retries"),
                                    ({}, {"SELFIMPROVE_READ_TIMEOUT": "inf"}, "SELFIMPROVE_READ_TIMEOUT")]:
        with pytest.raises(UserError, match=field):
            retry_policy(RetryPolicy(), options, environ)
    with pytest.raises(UserError, match="unknown option 'timout'"):
        OpenAICompatBackend.from_spec("openai:http://127.0.0.1:9/v1,timout=3", probe=False)
    b = OpenAICompatBackend.from_spec("openai:http://127.0.0.1:9/v1,http://127.0.0.1:10/v1@org/m@rev,retries=1",
                                      probe=False)
    assert b.model == "org/m@rev" and len(b.base_urls) == 2 and b.retry.max_attempts == 2


def _trace(ok: int, failed: int) -> Trace:
    comps = [Completion(text="1")] * ok + [
        Completion(text="", finish_reason="error", error="HTTP 503")] * failed
    return Trace(example_id="e", strategy="s", steps=(Step(kind="generate", completions=tuple(comps)),),
                 status="error" if failed else "ok")


def test_training_refuses_a_round_that_lost_too_many_requests():
    from selfimprove.training.data import MAX_GENERATION_ERROR_RATE, check_generation_errors

    assert MAX_GENERATION_ERROR_RATE == 0.05
    assert check_generation_errors([_trace(19, 1)], 1)["error_rate"] == 0.05  # at the threshold: kept
    with pytest.raises(RunIncomplete, match=r"round 2: 2 of 20 .*HTTP 503"):
        check_generation_errors([_trace(18, 2)], 2)


def test_the_training_loop_stops_incomplete_and_resumes(tiny_random_model_dir, tmp_path):
    from selfimprove.backends.scripted import ScriptedBackend
    from selfimprove.tasks.arithmetic import ArithmeticTask
    from selfimprove.training.config import LoopConfig
    from selfimprove.training.loop import run_loop

    t = ArithmeticTask(n_train=8, n_dev=4, n_test=4)
    cfg = LoopConfig.from_dict({"method": "no-filter", "rounds": 1, "n": 2, "train_limit": 4, "eval_limit": 2,
                                "max_tokens": 20, "max_steps": 1, "batch_size": 4})
    fail_train = {"on": True}

    def reply(prompt: str, i: int):
        train = prompt in {t.prompt(e) for e in t.examples("train")}
        return ScriptedBackend.FAIL if train and fail_train["on"] else "1+1=#2"

    backend = ScriptedBackend(rules=[(r"", reply)])
    with pytest.raises(RunIncomplete, match="round 1: 4 of 4"):
        run_loop(cfg, t, tiny_random_model_dir, tmp_path / "run", make_backend=lambda p: backend,
                 log=lambda m: None)
    assert not (tmp_path / "run" / "round-1" / "traces.jsonl").exists()  # no data built from the round
    fail_train["on"] = False
    summary = run_loop(cfg, t, tiny_random_model_dir, tmp_path / "run", make_backend=lambda p: backend,
                       log=lambda m: None)
    assert summary["rounds_done"] == 1
    data = json.loads((tmp_path / "run" / "round-1" / "data.json").read_text())
    assert data["failed"] == 0 and data["rows"] == 4
