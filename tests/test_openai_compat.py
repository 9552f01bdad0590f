"""The openai_compat backend's contract against the fake server: shapes, request bodies, log-probabilities,
the capability probe, model specs, load balancing, concurrency, loglikelihood and the pieces of the retry
layer. Fault handling has its own file (test_openai_faults.py)."""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from fake_openai_server import FakeOpenAIServer

from selfimprove.backends.base import Backend
from selfimprove.backends.openai_compat import OpenAICompatBackend, RetryPolicy, parse_retry_after, redact_url
from selfimprove.errors import CapabilityError, UserError
from selfimprove.records import Completion, SamplingParams

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, connect_timeout=0.5, read_timeout=1.0,
                   total_timeout=2.0)


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture
def srv(server):
    server.reset()
    return server


def make(srv, **kw) -> OpenAICompatBackend:
    return OpenAICompatBackend(srv.url, kw.pop("model", "fake-model"), retry=FAST, **kw)


# ----- retry-layer pieces -----

def test_parse_retry_after_seconds_date_and_garbage():
    assert parse_retry_after("2", cap=60) == 2.0
    assert parse_retry_after(" 1.5 ", cap=60) == 1.5
    assert parse_retry_after("120", cap=60) == 60  # capped
    assert parse_retry_after("-3", cap=60) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", cap=60, now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", cap=60, now=1445412490.0) == 0.0  # past
    for bad in (None, "", "soon", "nan", "Wed, 99 Foo"):
        assert parse_retry_after(bad, cap=60) is None


def test_backoff_is_full_jitter_and_capped():
    p = RetryPolicy(base_delay=0.5, max_delay=3.0)
    rng = random.Random(0)
    for attempt, bound in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)):
        draws = [p.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= d <= bound for d in draws) and max(draws) > 0.8 * bound and min(draws) < 0.2 * bound


@pytest.mark.parametrize("field,value", [("max_attempts", 0), ("base_delay", -1), ("read_timeout", 0),
                                         ("total_timeout", -1), ("connect_timeout", 0),
                                         ("retry_after_cap", -1)])
def test_retry_policy_validates(field, value):
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: value})


def test_redact_url_drops_credentials():
    assert redact_url("https://user:secret@api.example.com:8443/v1") == "https://api.example.com:8443/v1"
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize("kwargs,field", [({"base_urls": []}, "base_urls"),
                                          ({"base_urls": "ftp://x/v1"}, "base_urls"),
                                          ({"endpoint": "responses"}, "endpoint"),
                                          ({"concurrency": 0}, "concurrency"),
                                          ({"logprobs_source": "cooked"}, "logprobs_source")])
def test_constructor_validates(kwargs, field):
    args = {"base_urls": "http://127.0.0.1:9/v1", "model": "m", "probe": False, **kwargs}
    with pytest.raises(UserError, match=field):
        OpenAICompatBackend(**args)


# ----- generation -----

def test_shape_texts_logprobs_and_request_body(srv):
    b = make(srv, probe=False, n_native=True, logprobs_source="processed")
    assert isinstance(b, Backend)
    out = b.generate(["alpha", "beta"], SamplingParams(n=3, temperature=0.7, top_p=0.9, max_tokens=20, seed=4,
                                                       stop=("\n",)))
    assert [[c.text for c in row] for row in out] == [[f"<alpha:{i}>s4" for i in range(3)],
                                                     [f"<beta:{i}>s4" for i in range(3)]]
    c = out[0][0]
    assert c.token_logprobs == (-0.5,) * len(c.text) and c.completion_tokens == len(c.text)
    assert c.prompt_tokens == 5 and c.finish_reason == "stop" and c.logprobs_source == "processed"
    assert Completion.from_json(c.to_json()) == c
    body = srv.requests[0]["body"]
    assert body == {"model": "fake-model", "prompt": body["prompt"], "max_tokens": 20, "n": 3,
                    "temperature": 0.7,
                    "top_p": 0.9, "stop": ["\n"], "seed": 4, "logprobs": 1}
    assert srv.attempts == 2  # n sent natively: one request per prompt


def test_top_k_only_when_set_and_allowed(srv):
    make(srv, probe=False).generate(["a"], SamplingParams(top_k=5, logprobs=False))
    make(srv, probe=False, send_top_k=False).generate(["a"], SamplingParams(top_k=5))
    make(srv, probe=False).generate(["a"], SamplingParams())
    bodies = [r["body"] for r in srv.requests]
    assert bodies[0]["top_k"] == 5 and "logprobs" not in bodies[0]
    assert "top_k" not in bodies[1] and "top_k" not in bodies[2]


def test_logprobs_off_gives_none(srv):
    out = make(srv, probe=False).generate(["a"], SamplingParams(logprobs=False))
    assert out[0][0].token_logprobs is None and out[0][0].logprobs_source is None
    assert out[0][0].completion_tokens > 0  # from usage


def test_stop_string_cut_client_side(srv):
    # transformers serve returns the stop string; the backend cuts it as vLLM would
    out = make(srv, probe=False).generate(["abc"], SamplingParams(stop=(":",)))
    assert out[0][0].text == "<abc" and out[0][0].finish_reason == "stop"


def test_chat_endpoint_messages_and_logprobs(srv):
    b = make(srv, endpoint="chat", probe=False)
    out = b.generate(["hello there"], SamplingParams(n=2))
    assert [c.text for c in out[0]] == ["< there:0>", "< there:1>"]
    assert out[0][0].token_logprobs == (-0.5,) * 10
    body = srv.requests[0]["body"]
    assert body["messages"] == [{"role": "user", "content": "hello there"}] and body["logprobs"] is True
    assert b.capabilities.chat_template and srv.requests[0]["path"] == "/v1/chat/completions"


def test_generate_inside_a_running_event_loop(srv):
    b = make(srv, probe=False)

    async def caller():
        sync = b.generate(["x"], SamplingParams())  # from a coroutine: runs in a worker thread
        native = await b.agenerate(["x"], SamplingParams())
        return sync, native

    sync, native = asyncio.run(caller())
    assert sync == native and sync[0][0].text == "<x:0>"


def test_concurrency_is_bounded_and_used(srv):
    srv.latency = 0.05
    try:
        out = make(srv, probe=False, concurrency=4).generate([f"p{i}" for i in range(16)], SamplingParams())
    finally:
        srv.latency = 0.0
    # the server counts requests in flight at once: 4 means overlapped (not sequential) and bounded at 4;
    # the speed itself is bench/bench_openai.py's, not a timed test's
    assert len(out) == 16 and srv.max_active == 4


def test_load_balanced_over_servers(srv):
    with FakeOpenAIServer(latency=0.02) as other:
        srv.latency = 0.02
        try:
            b = OpenAICompatBackend([srv.url, other.url], "fake-model", probe=False, retry=FAST)
            out = b.generate([f"p{i}" for i in range(20)], SamplingParams())
        finally:
            srv.latency = 0.0
        assert all(c.ok for row in out for c in row)
        assert srv.attempts + other.attempts == 20 and min(srv.attempts, other.attempts) >= 7


# ----- probe, model spec, fingerprint -----

def test_probe_detects_native_n_logprobs_and_echo(srv):
    b = make(srv, model=None)
    assert b.model == "fake-model" and b.info["model_source"] == "/v1/models"
    assert b.info["probe"] == "ok" and b.info["n_native"] is True
    assert b.capabilities.logprobs and b.capabilities.loglikelihood and not b.capabilities.seed
    probe = srv.requests[0]["body"]
    assert probe["n"] == 2 and probe["max_tokens"] == 8 and probe["echo"] is True and srv.attempts == 1
    assert b.info["sampling_varies"] is True  # its two choices differ: no second request needed


def test_probe_detects_ignored_n_and_fans_out(srv):
    srv.reset(ignore_n=True)
    b = make(srv)
    assert b.info["n_native"] is False
    out = b.generate(["q"], SamplingParams(n=3, seed=10))
    assert [c.text for c in out[0]] == ["<q:0>s10", "<q:0>s11", "<q:0>s12"]  # seed + i per fanned-out sample
    # the probe's second request: one choice per request, and the fake server repeats itself at temperature 1
    assert b.info["sampling_varies"] is False and srv.requests[1]["body"]["temperature"] == 1.0
    assert all(r["body"]["n"] == 1 for r in srv.requests[1:]) and srv.attempts == 5


def test_probe_warns_when_samples_at_temperature_1_are_identical(srv, caplog):
    srv.reset(script=[("text", "same")])
    with caplog.at_level("WARNING"):
        b = make(srv)
    assert b.info["sampling_varies"] is False and "ignore temperature" in caplog.text


def test_probe_retries_without_echo_when_refused(srv):
    srv.reset(script=[400])
    b = make(srv)
    assert b.info["probe"] == "ok" and b.capabilities.logprobs and not b.capabilities.loglikelihood
    assert "echo" in srv.requests[0]["body"] and "echo" not in srv.requests[1]["body"]


def test_models_endpoint_failing_means_server_default(srv):
    srv.models_status = 500
    b = make(srv, model=None, probe=False)
    assert b.model is None and b.info["model_source"].startswith("server default")
    b.generate(["a"], SamplingParams())
    assert "model" not in srv.requests[-1]["body"]
    assert b.fingerprint() != make(srv, probe=False).fingerprint()


def test_from_spec_urls_and_model():
    b = OpenAICompatBackend.from_spec("openai:http://127.0.0.1:1/v1,http://127.0.0.1:2/v1/@org/name@main",
                                      probe=False)
    assert b.base_urls == ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"] and b.model == "org/name@main"
    b = OpenAICompatBackend.from_spec("openai:http://u:pw@127.0.0.1:1/v1", model_name="m", probe=False)
    assert b.model == "m" and b.info["servers"] == ["http://127.0.0.1:1/v1"] and "pw" not in repr(b)
    for bad in ("openai:", "hf:x", "openai:127.0.0.1:8000"):
        with pytest.raises(UserError):
            OpenAICompatBackend.from_spec(bad, model_name="m", probe=False)


def test_from_spec_resolves_the_model_from_the_server(srv):
    b = OpenAICompatBackend.from_spec(f"openai:{srv.url}", retry=FAST)
    assert b.model == "fake-model" and b.info["probe"] == "ok"


def test_get_backend_builds_openai_specs(srv):
    from selfimprove.backends import get_backend

    b = get_backend(f"openai:{srv.url}@fake-model")
    assert isinstance(b, OpenAICompatBackend) and b.model == "fake-model"


def test_fingerprint_names_the_model_not_the_port():
    a = OpenAICompatBackend("http://127.0.0.1:1/v1", "m", probe=False)
    b = OpenAICompatBackend(["http://127.0.0.1:2/v1", "http://127.0.0.1:3/v1"], "m", probe=False)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != OpenAICompatBackend("http://127.0.0.1:1/v1", "m2", probe=False).fingerprint()
    assert a.fingerprint() != OpenAICompatBackend("http://127.0.0.1:1/v1", "m", probe=False,
                                                  revision="r2").fingerprint()
    assert a.fingerprint() != OpenAICompatBackend("http://127.0.0.1:1/v1", "m", probe=False,
                                                  endpoint="chat").fingerprint()


# ----- loglikelihood -----

def test_loglikelihood_sums_the_continuation_tokens(srv):
    b = make(srv)
    assert b.loglikelihood(["12+3=", "ab"], ["15", "cde"]) == [-1.0, -1.5]
    body = srv.requests[-1]["body"]
    assert body["echo"] is True and body["max_tokens"] == 1 and body["prompt"] in ("12+3=15", "abcde")


def test_loglikelihood_failure_is_nan_and_missing_capability_refuses(srv):
    b = make(srv)
    srv.reset(script=[500] * 3)
    assert math.isnan(b.loglikelihood(["a"], ["b"])[0])
    with pytest.raises(CapabilityError, match="loglikelihood"):
        make(srv, probe=False).loglikelihood(["a"], ["b"])
    with pytest.raises(ValueError):
        b.loglikelihood(["a", "b"], ["c"])
