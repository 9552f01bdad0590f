"""A real OpenAI-compatible server in the tests: ``transformers serve`` on loopback with a tiny random Llama,
and with the built-in real chat model ``smollm2`` through ``/v1/chat/completions``.

Greedy decoding through ``openai_compat`` must agree with the in-process ``hf`` backend token for token, and
``selfimprove eval --model openai:URL`` must give the same traces as ``--model PATH``. ``transformers serve``
ignores ``n``, ``logprobs`` and ``echo`` on /v1/completions (it says so in its source), so the probe must find
n not native (fan-out) and no log-probabilities. It also samples only when the model's generation config says
``do_sample`` (it sets the temperature but not ``do_sample``), so on ``smollm2`` the probe must find that two
samples at temperature 1 are identical, as they are. Skipped, with the reason, where the server cannot start
(``transformers[serving]`` missing, or the process exits before it is healthy).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfimprove.backends.openai_compat import OpenAICompatBackend, RetryPolicy
from selfimprove.records import SamplingParams

pytestmark = pytest.mark.slow

PROMPTS = ["12+34=", "7*8=", "hello world", "q: 3-1?"]


def _serve_command() -> list[str]:
    exe = Path(sys.executable).parent / "transformers"
    if exe.exists():
        return [str(exe), "serve"]
    if found := shutil.which("transformers"):
        return [found, "serve"]
    return [sys.executable, "-c", "from transformers.cli.transformers import main; main()", "serve"]


@pytest.fixture(scope="module")
def served(tiny_random_model_dir, tmp_path_factory):
    yield from _serve(tiny_random_model_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def served_smollm2(smollm2_dir, tmp_path_factory):
    yield from _serve(smollm2_dir, tmp_path_factory, threads="2")


def _serve(model_dir, tmp_path_factory, threads: str = "1"):
    missing = [m for m in ("fastapi", "uvicorn", "openai") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"transformers serve needs {', '.join(missing)}: pip install 'transformers[serving]'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    work = tmp_path_factory.mktemp("serve")
    log_path = work / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(work / "hub"),
           "TRANSFORMERS_VERBOSITY": "error",
           "OMP_NUM_THREADS": threads}
    cmd = _serve_command() + [str(model_dir), "--host", "127.0.0.1", "--port", str(port),
                              "--device", "cpu", "--dtype", "float32"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        limit = 300  # a real model loads slowly on a busy machine
        deadline = time.monotonic() + limit
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text()[-600:]
                pytest.skip(
                    f"transformers serve exited with status {proc.returncode} before it was healthy: {tail}")
            try:
                if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"transformers serve not healthy after {limit} s; log: {log_path.read_text()[-600:]}")
            time.sleep(0.3)
        yield url + "/v1", model_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def hf_backend(tiny_random_model_dir):
    from selfimprove.backends.hf import HFBackend

    return HFBackend(str(tiny_random_model_dir))


def test_probe_finds_what_transformers_serve_supports(served):
    url, model_dir = served
    b = OpenAICompatBackend(url, str(model_dir))
    assert b.info["probe"] == "ok", b.info
    assert b.info["n_native"] is False  # it ignores n
    assert not b.capabilities.logprobs and not b.capabilities.loglikelihood


@pytest.mark.parametrize("max_tokens", [1, 12])
def test_greedy_agrees_with_hf_backend(served, hf_backend, max_tokens):
    url, model_dir = served
    remote = OpenAICompatBackend(url, str(model_dir), retry=RetryPolicy(read_timeout=60, total_timeout=120))
    params = SamplingParams(n=2, temperature=0.0, max_tokens=max_tokens)
    got = remote.generate(PROMPTS, params)
    want = hf_backend.generate(PROMPTS, params)
    assert [[c.text for c in row] for row in got] == [[c.text for c in row] for row in want]
    assert [[c.finish_reason for c in row] for row in got] == [[c.finish_reason for c in row] for row in want]
    assert all(c.ok and c.completion_tokens == w.completion_tokens
               for row, wrow in zip(got, want) for c, w in zip(row, wrow))
    assert any(c.text for row in got for c in row)  # something was generated


def test_stop_strings_cut_like_hf(served, hf_backend):
    url, model_dir = served
    remote = OpenAICompatBackend(url, str(model_dir), probe=False, n_native=False)
    free = hf_backend.generate(PROMPTS, SamplingParams(max_tokens=12))
    stops = tuple({c.text[3:4] for row in free for c in row if len(c.text) > 4} - {""})[:2] or ("z",)
    params = SamplingParams(max_tokens=12, stop=stops)
    got, want = remote.generate(PROMPTS, params), hf_backend.generate(PROMPTS, params)
    assert [[c.text for c in row] for row in got] == [[c.text for c in row] for row in want]


def test_eval_cli_through_openai_agrees_with_hf(served, tmp_path, monkeypatch):
    from selfimprove.cli.main import main
    from selfimprove.store.runs import RunStore

    url, model_dir = served
    monkeypatch.setenv("SELFIMPROVE_HOME", str(tmp_path))
    store = tmp_path / "runs.db"
    # max_tokens inside the random model's 256-position context: hf clips generation at the context, while
    # transformers serve runs past it, so longer generations are not comparable (a model limit, not a backend
    # one)
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"id": f"e{i}", "question": f"{i}+{3 * i}", "answer": 4 * i}) + "\n"
                            for i in range(4)))
    common = ["--task", "jsonl:template=q: {question} a:", "--data", str(data), "--strategy",
              "greedy:max_tokens=32", "--store", str(store)]
    # no @MODEL: the model comes from /v1/models, or (as here, an empty cache) the server's pinned default
    assert main(["eval", "--model", f"openai:{url}", *common]) == 0
    assert main(["eval", "--model", str(model_dir), *common]) == 0
    runs = RunStore(store)
    by_model = {runs.get_run(r["id"])["config"]["model"]: r["id"] for r in runs.list_runs()}
    remote_id, local_id = by_model[f"openai:{url}"], by_model[str(model_dir)]

    def answers(run_id):
        return [(t.example_id, t.final_answer, t.status, [c.text for s in t.steps for c in s.completions])
                for t in sorted(runs.traces(run_id), key=lambda t: t.example_id)]

    remote, local = answers(remote_id), answers(local_id)
    assert len(remote) == 4 and all(status == "ok" for _, _, status, _ in remote)
    assert remote == local


def test_smollm2_chat_completions_agree_with_hf_and_the_probe_reads_sampling(served_smollm2, smollm2_dir):
    from selfimprove.backends.hf import HFBackend
    from selfimprove.chat import few_shot

    url, _ = served_smollm2
    remote = OpenAICompatBackend.from_spec(f"openai:{url}@{smollm2_dir},chat=true",
                                           retry=RetryPolicy(read_timeout=300, total_timeout=600))
    assert remote.endpoint == "chat" and remote.capabilities.chat_template and remote.info["probe"] == "ok"
    prompts = [few_shot("Answer briefly.", [], q) for q in ("What is 12 + 30?", "Name a colour.")]
    params = SamplingParams(temperature=0.0, max_tokens=10)
    local = HFBackend(str(smollm2_dir))  # the server applies the same chat template to the same messages
    got, want = remote.generate(prompts, params), local.generate(prompts, params)
    assert [c.text for row in got for c in row] == [c.text for row in want for c in row]
    assert all(c.text.strip() for row in got for c in row)
    sampled = remote.generate(prompts[:1], SamplingParams(n=3, temperature=1.0, max_tokens=8))[0]
    assert all(c.ok for c in sampled)
    # what the start-up probe recorded is what sampling does: transformers serve keeps the model's greedy
    # default
    assert remote.info["sampling_varies"] == (len({c.text for c in sampled}) > 1)
