"""Fault tests for the openai_compat backend against the scriptable fake server on loopback.

Each scenario scripts the server's answers, runs one ``generate`` and checks: the outcome is classified as the
backend's module docstring specifies (retried / failed at once / exhausted), the call finishes within its
deadline, the server counted exactly the attempts expected, the output keeps its prompts x n shape, and no
completion is marked complete unless it is. A canary API key is then searched for in everything a run wrote.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import socket
import time
import uuid

import pytest
from fake_openai_server import FakeOpenAIServer

from selfimprove.backends.openai_compat import OpenAICompatBackend, RetryPolicy
from selfimprove.records import SamplingParams

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, retry_after_cap=0.3, connect_timeout=0.5,
                   read_timeout=0.3, total_timeout=2.0)
"""Short deadlines so that every scenario ends in well under two seconds."""
PROMPT = "what is 17+25?"


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer() as srv:
        yield srv


def _http_date(seconds_ahead: float) -> str:
    return email.utils.formatdate(time.time() + seconds_ahead, usegmt=True)


def S(script, expect="ok", attempts=2, has="", n=1, min_s=0.0, max_s=1.9, policy=FAST, **backend):
    """One scenario: server script, expected outcome per completion, server-side attempts, error substring."""
    return {"script": script, "expect": expect, "attempts": attempts, "has": has, "n": n, "min_s": min_s,
            "max_s": max_s, "policy": policy, "backend": backend}


SCENARIOS = {
    # retried, then answered
    "500-then-ok": S([500]),
    "502-then-ok": S([502]),
    "503-then-ok": S([503]),
    "504-then-ok": S([504]),
    "599-then-ok": S([599]),
    "408-then-ok": S([408]),
    "409-then-ok": S([409]),
    "429-no-retry-after": S([429]),
    "429-retry-after-0": S([(429, "0")]),
    "429-retry-after-0.2s": S([(429, "0.2")], min_s=0.19),
    "503-retry-after-http-date": S(lambda: [(503, _http_date(5))], min_s=0.28),
    "429-retry-after-capped": S([(429, "3600")], min_s=0.28, max_s=1.5),
    "429-retry-after-garbage": S([(429, "soon")]),
    "503-retry-after-negative": S([(503, "-5")]),
    "connection-reset": S(["reset"]),
    "stall-past-read-deadline": S([("stall", 3)], min_s=0.28),
    "truncated-json": S(["truncated"]),
    "empty-choices": S(["empty"]),
    "500-500-then-ok": S([500, 500], attempts=3),
    "502-429-then-ok": S([502, 429], attempts=3),
    "reset-503-then-ok": S(["reset", 503], attempts=3),
    "stall-truncated-then-ok": S([("stall", 3), "truncated"], attempts=3, min_s=0.28),
    # retried until max_attempts
    "500-exhausted": S([500] * 3, "error", 3, "HTTP 500"),
    "502-exhausted": S([502] * 3, "error", 3, "HTTP 502"),
    "503-exhausted": S([503] * 3, "error", 3, "HTTP 503"),
    "429-exhausted": S([429] * 3, "error", 3, "HTTP 429"),
    "408-exhausted": S([408] * 3, "error", 3, "HTTP 408"),
    "reset-exhausted": S(["reset"] * 3, "error", 3, "connection error"),
    "stall-exhausted": S([("stall", 3)] * 3, "error", 3, "timeout", min_s=0.85),
    "truncated-exhausted": S(["truncated"] * 3, "error", 3, "malformed JSON"),
    "empty-choices-exhausted": S(["empty"] * 3, "error", 3, "empty 'choices'"),
    "mixed-exhausted": S([500, "reset", 429], "error", 3, "HTTP 429"),
    # failed at once: retrying would get the same answer
    "400-not-retried": S([400], "error", 1, "HTTP 400"),
    "401-not-retried": S([401], "error", 1, "HTTP 401"),
    "403-not-retried": S([403], "error", 1, "HTTP 403"),
    "404-not-retried": S([404], "error", 1, "HTTP 404"),
    "422-not-retried": S([422], "error", 1, "HTTP 422"),
    "301-not-followed": S([301], "error", 1, "HTTP 301"),
    "wrong-schema-no-choices": S(["schema"], "error", 1, "no 'choices' list"),
    "wrong-schema-json-list": S(["list"], "error", 1, "no 'choices' list"),
    "wrong-schema-text-not-string": S(["badtext"], "error", 1, "not a string"),
    "finish-reason-abort": S([("finish", "abort")], "error", 1, "finish_reason='abort'"),
    # deadlines
    "total-deadline-cuts-a-stall": S([("stall", 3)], "error", 1, "total deadline", min_s=0.45, max_s=0.9,
                                     policy=RetryPolicy(read_timeout=5, total_timeout=0.5)),
    "retry-after-beyond-deadline": S([(429, "5")], "error", 1, "would pass the total deadline", max_s=0.4,
                                     policy=RetryPolicy(retry_after_cap=10, total_timeout=0.5)),
    # n: native, ignored (fanned out), failing
    "n3-native": S([], "ok", 1, n=3),
    "n3-ignored-fans-out": S([], "ok", 3, n=3, ignore_n=True),
    "n3-known-not-native": S([], "ok", 3, n=3, n_native=False),
    "n3-503-then-ok": S([503], "ok", 2, n=3),
    "n3-exhausted": S([500] * 3, "error", 3, "HTTP 500", n=3),
    "n3-empty-then-ok": S(["empty"], "ok", 2, n=3),
    "n2-fill-in-fails": S(["one", 500, 500, 500], ["ok", "error"], 4, "HTTP 500", n=2),
    "n3-fan-out-all-retried": S([502, 502, 502], "ok", 6, n=3, n_native=False),
    # chat endpoint
    "chat-503-then-ok": S([503], endpoint="chat"),
    "chat-wrong-schema": S(["badtext"], "error", 1, "not a string", endpoint="chat"),
    "chat-n2-ignored": S([], "ok", 2, n=2, endpoint="chat", ignore_n=True),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault_scenario(server, name):
    sc = SCENARIOS[name]
    backend_kw = dict(sc["backend"])
    script = sc["script"]() if callable(sc["script"]) else sc["script"]
    server.reset(script=script, ignore_n=backend_kw.pop("ignore_n", False))
    backend = OpenAICompatBackend(server.url, "fake-model", probe=False, retry=sc["policy"],
                                  **{"n_native": True, **backend_kw})
    t0 = time.perf_counter()
    out = backend.generate([PROMPT], SamplingParams(n=sc["n"], max_tokens=32, seed=7))
    elapsed = time.perf_counter() - t0

    assert sc["min_s"] <= elapsed <= sc["max_s"], f"{name}: took {elapsed:.2f}s"
    assert server.attempts == sc["attempts"], f"{name}: server saw {server.attempts} attempts"
    assert len(out) == 1 and len(out[0]) == sc["n"]
    expect = sc["expect"] if isinstance(sc["expect"], list) else [sc["expect"]] * sc["n"]
    assert sorted(c.finish_reason == "error" for c in out[0]) == sorted(e == "error" for e in expect)
    for c in out[0]:
        if c.ok:  # complete: a real text with its log-probabilities, no error
            assert c.text.startswith("<") and c.error is None and c.finish_reason == "stop"
            assert c.token_logprobs and len(c.token_logprobs) == len(c.text) == c.completion_tokens
        else:  # failed: recorded as such, never as an empty completion marked complete
            assert c.error and sc["has"] in c.error and "attempt" in c.error or "finish" in name
            if "finish" not in name:  # a server-side abort keeps its partial text, marked failed
                assert c.text == "" and c.token_logprobs is None
    if sc["n"] > 1:  # samples stay distinct: seed + i when fanned out, choice index when native
        texts = [c.text for c in out[0] if c.ok]
        assert len(set(texts)) == len(texts)


def test_enough_scenarios():
    assert len(SCENARIOS) >= 40


def test_one_failing_prompt_does_not_sink_the_batch(server):
    prompts = [f"q{i}: 1+{i}=" for i in range(5)]
    server.reset(by_prompt={prompts[2]: [500, 500, 500]})
    backend = OpenAICompatBackend(server.url, "fake-model", probe=False, n_native=True, retry=FAST)
    out = backend.generate(prompts, SamplingParams(n=2))
    assert [len(row) for row in out] == [2] * 5
    assert [all(c.ok for c in row) for row in out] == [True, True, False, True, True]
    assert all(c.finish_reason == "error" and "HTTP 500" in c.error for c in out[2])
    assert server.attempts_for(prompts[2]) == 3
    assert all(server.attempts_for(p) == 1 for i, p in enumerate(prompts) if i != 2)


def _dead_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connection refused
    return f"http://127.0.0.1:{port}/v1"


def test_retry_moves_to_a_healthy_server(server):
    with FakeOpenAIServer() as bad:
        bad.reset(script=[503] * 100)
        server.reset()
        backend = OpenAICompatBackend([bad.url, server.url, _dead_url()], "fake-model", probe=False,
                                      n_native=True, retry=FAST)
        out = backend.generate([f"p{i}" for i in range(8)], SamplingParams())
        assert all(c.ok for row in out for c in row)
        assert server.attempts == 8  # each prompt answered once, by the healthy server


def test_all_servers_down_is_recorded_not_raised():
    backend = OpenAICompatBackend([_dead_url(), _dead_url()], "m", probe=False, n_native=True, retry=FAST)
    t0 = time.perf_counter()
    out = backend.generate(["a", "b"], SamplingParams(n=2))
    assert time.perf_counter() - t0 < 1.5
    assert [len(r) for r in out] == [2, 2]
    assert all(c.finish_reason == "error" and "connection error" in c.error and "3 attempt" in c.error
               for row in out for c in row)


def test_probe_against_a_failing_server_is_recorded(server):
    server.reset(script=[500] * 10)
    backend = OpenAICompatBackend(server.url, "fake-model", retry=FAST)
    assert backend.info["probe"].startswith("failed: HTTP 500")
    assert server.attempts == 2  # the probe tries at most twice
    assert backend.capabilities.logprobs is False and backend.capabilities.loglikelihood is False


def test_canary_key_never_recorded(server, tmp_path, monkeypatch, caplog, capsys):
    """Plant a unique key, drive successes and failures (one server echoes the header back), then search the
    backend's repr, info, fingerprint, every Completion, the logs, the console and every file a CLI run
    wrote."""
    canary = f"sk-canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("SELFIMPROVE_CANARY_KEY", canary)
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    caplog.set_level(logging.DEBUG)
    server.reset(script=[500, 500, "echo_auth", 500, "reset", "truncated", "schema", 429])
    backend = OpenAICompatBackend(server.url, None, api_key_env="SELFIMPROVE_CANARY_KEY", retry=FAST)
    out = backend.generate(["x", "y", "z"], SamplingParams(n=2))
    assert any(r["authorization"] == f"Bearer {canary}" for r in server.requests)  # the key was sent
    seen = [repr(backend), str(backend), json.dumps(backend.info, default=str), backend.fingerprint(),
            str(vars(backend)), *(c.to_json() for row in out for c in row)]
    assert any(not c.ok for row in out for c in row)
    assert any("Bearer ***" in (c.error or "") for row in out for c in row)  # scrubbed, not dropped

    from selfimprove.cli.main import main

    monkeypatch.setenv("SELFIMPROVE_HOME", str(tmp_path))
    server.reset(script=["echo_auth", 500, 500, 500, "reset"] + ["echo_auth"] * 3)
    store = tmp_path / "runs.db"
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"id": f"e{i}", "question": f"{i}+{i}", "answer": 2 * i}) + "\n"
                            for i in range(3)))
    rc = main(["eval", "--model", f"openai:{server.url}@fake-model", "--task", "jsonl", "--data", str(data),
               "--strategy", "greedy", "--store", str(store), "--report", str(tmp_path / "report.html")])
    assert rc == 3 and store.exists()  # some requests failed past their retries: incomplete
    captured = capsys.readouterr()
    seen += [captured.out, captured.err, caplog.text]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            seen.append(path.read_bytes().decode("utf-8", "replace"))
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) >= 2
    assert not [s for s in seen if canary in s], "the API key leaked"
    assert os.environ["SELFIMPROVE_CANARY_KEY"] == canary
