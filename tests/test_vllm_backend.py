"""The vllm backend: the mapping to and from vLLM's records runs everywhere (with stand-in objects); the
engine itself runs only where a GPU and vllm are present (``-m gpu``), and is skipped otherwise."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import SimpleNamespace

import pytest

from selfimprove.backends.vllm_engine import VLLMConfig, sampling_kwargs, to_completion
from selfimprove.errors import UserError
from selfimprove.records import SamplingParams


def _gpu_and_vllm() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


needs_gpu = pytest.mark.skipif(not _gpu_and_vllm(),
                               reason="needs a CUDA GPU and vllm (pip install 'selfimprove[vllm]')")


def test_importing_the_module_does_not_import_vllm():
    code = "import sys, selfimprove.backends.vllm_engine; print('vllm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sampling_params_map_one_to_one():
    p = SamplingParams(n=4, temperature=0.7, top_p=0.9, top_k=20, max_tokens=64, stop=("\n\n",), seed=3)
    assert sampling_kwargs(p) == {"n": 4, "temperature": 0.7, "top_p": 0.9, "top_k": 20, "max_tokens": 64,
                                  "stop": ["\n\n"], "seed": 3, "logprobs": 0}
    assert sampling_kwargs(SamplingParams(logprobs=False))["logprobs"] is None


def _output(text, token_ids, lps, finish):
    logprobs = None if lps is None else [{t: SimpleNamespace(logprob=lp)} for t, lp in zip(token_ids, lps)]
    return SimpleNamespace(text=text, token_ids=token_ids, logprobs=logprobs, finish_reason=finish)


def test_outputs_become_completions():
    c = to_completion(_output("42", [7, 9], [-0.1, -0.2], "stop"), prompt_tokens=5, logprobs_source="raw")
    assert (c.text, c.token_logprobs, c.finish_reason, c.prompt_tokens, c.completion_tokens) == (
        "42", (-0.1, -0.2), "stop", 5, 2)
    assert c.logprobs_source == "raw" and c.ok
    c = to_completion(_output("4", [7], None, "length"), 5, "raw")
    assert c.token_logprobs is None and c.logprobs_source is None and c.finish_reason == "length"
    c = to_completion(_output("", [], [], "abort"), 5, "raw")
    assert c.finish_reason == "error" and "abort" in c.error


@pytest.mark.parametrize("options,field", [({"tensor_parallel_size": 0}, "tensor_parallel_size"),
                                           ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
                                           ({"dtype": "int4"}, "dtype"),
                                           ({"logprobs_mode": "x"}, "logprobs_mode"),
                                           ({"model": ""}, "model")])
def test_config_validates(options, field):
    with pytest.raises(UserError, match=field):
        VLLMConfig(**{"model": "m", **options})


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_missing_vllm_is_a_user_error():
    from selfimprove.backends.vllm_engine import VLLMBackend

    with pytest.raises(UserError, match="vllm"):
        VLLMBackend("some/model")


# ----- the engine (GPU) -----

@pytest.fixture(scope="module")
def gpu_model_dir(tmp_path_factory):
    from conftest import make_random_llama

    # head_dim 64 (hidden 256 / 4 heads): the tiny fixture's head_dim 8 is below what vLLM's kernels take
    return make_random_llama(tmp_path_factory.mktemp("vllm") / "model", hidden=256, layers=2)


@pytest.fixture(scope="module")
def engine(gpu_model_dir):
    from selfimprove.backends.vllm_engine import VLLMBackend

    return VLLMBackend(str(gpu_model_dir), dtype="float32", gpu_memory_utilization=0.3, enforce_eager=True,
                       max_model_len=256, enable_prefix_caching=True, tensor_parallel_size=1)


@pytest.mark.gpu
@needs_gpu
def test_engine_generates_shape_logprobs_and_seeds(engine):
    prompts = ["12+34=", "7*8=", "12+34="]
    params = SamplingParams(n=3, temperature=1.0, max_tokens=8, seed=5)
    a, b = engine.generate(prompts, params), engine.generate(prompts, params)
    assert [len(row) for row in a] == [3, 3, 3]
    assert [[c.text for c in row] for row in a] == [[c.text for c in row] for row in b]  # seeded
    c = a[0][0]
    assert c.ok and c.token_logprobs and len(c.token_logprobs) == c.completion_tokens <= 8
    assert c.logprobs_source == "raw" and c.prompt_tokens == 6


@pytest.mark.gpu
@needs_gpu
def test_engine_greedy_agrees_with_hf(engine, gpu_model_dir):
    from selfimprove.backends.hf import HFBackend

    prompts = ["12+34=", "hello world", "q: 3-1?"]
    params = SamplingParams(max_tokens=6)
    got = engine.generate(prompts, params)
    want = HFBackend(str(gpu_model_dir)).generate(prompts, params)
    # a random model's logits are nearly flat, so allow float noise to flip a late token: the first must agree
    assert [row[0].text[:1] for row in got] == [row[0].text[:1] for row in want]
    lls = engine.loglikelihood(prompts, [row[0].text for row in got])
    assert all(abs(ll - row[0].sum_logprob) < 1e-2 for ll, row in zip(lls, got))


@pytest.mark.gpu
@needs_gpu
def test_engine_rejected_prompt_is_an_error_completion(engine):
    out = engine.generate(["1+1=", "9" * 400], SamplingParams(n=2, max_tokens=4))
    assert all(c.ok for c in out[0])
    assert all(c.finish_reason == "error" and c.error for c in out[1])


# ----- the Ray Data script (not run here: it needs ray, vllm and GPUs) -----

def _script():
    import importlib.util as iu
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "ray_vllm_generate.py"
    spec = iu.spec_from_file_location("ray_vllm_generate", path)
    module = iu.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ray_script_parses_and_builds_task_prompts_without_ray(tmp_path):
    script = _script()
    args = script.parse_args(["--task", "jsonl", "--model", "m", "--output", "o", "--n", "4",
                              "--tensor-parallel-size", "2", "--stop", "\n"])
    assert (args.n, args.tensor_parallel_size, args.stop) == (4, 2, ["\n"])
    data = tmp_path / "test.jsonl"
    data.write_text("".join(f'{{"id": "e{i}", "question": "{i}+1", "answer": {i + 1}}}\n' for i in range(5)))
    rows = script.task_rows("jsonl", str(data), "test", 3)
    assert len(rows) == 3 and all(r["id"] and r["prompt"] for r in rows)
    assert script.placement(1) == {"num_gpus": 1} and script.placement(4)["num_gpus"] == 0
    assert "ray" not in sys.modules and "vllm" not in sys.modules
