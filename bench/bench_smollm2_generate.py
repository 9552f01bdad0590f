"""Benchmark: the hf backend on the built-in real model ``smollm2`` (SmolLM2-135M-Instruct) against
``model.generate`` on the same batch, and against the machine's matmul-peak limit.

Two settings, each run side by side and interleaved (``--repeats`` times, so drift in machine load hits both):
greedy (``--prompts`` GSM8K questions through the chat template, ``--max-tokens`` new tokens each) and
sampling (``--sample-prompts`` prompts x ``--n`` samples at temperature 1, no top-k/top-p). ``model.generate``
gets the same token ids, left-padded, in one call, with ``num_return_sequences=n`` when sampling: how a user
batches the same work. Tokens counted: every generated token up to and including the first EOS, for both.

Where the two differ: ``generate`` runs the prompt of every row (n copies of each prompt when sampling),
padded to the longest prompt; the backend runs each distinct prompt once, the prefix all prompts share (the
chat template's system message) once, and prompts in groups of similar length (``backends/prefill.py``). The
script prints how many prompt positions each side computes. Decoding steps are the same work on both sides
(one row per sample; the backend drops finished rows, ``generate`` pads them).

The matmul-peak limit: decoding one token costs about 2 x (parameters, the tied embedding counted once as the
output layer) FLOPs, so fp32 matmul peak FLOP/s ÷ that is the tokens/s a perfect decoder would reach on these
threads; the backend's tokens/s ÷ that limit is its matmul utilisation (attention and sampling left out of the
numerator, which flatters the limit slightly).

    OMP_NUM_THREADS=2 python bench/bench_smollm2_generate.py [--threads 2] [--repeats 3]

Goals: greedy >= 1.0x ``generate``, sampling (n=8) >= 2x. Not covered: memory, long contexts, GPUs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gsm8k" / "test.jsonl"


def questions(count: int, data: Path = DATA) -> list[str]:
    """``count`` distinct questions: GSM8K's test split (``data``, default beside the checkout), else the
    built-in word problems (never repeated: the hf backend decodes a repeated prompt once, which would flatter
    it)."""
    if data.exists():
        rows = [json.loads(line)["question"] for line in data.open()][:count]
    else:
        from selfimprove.tasks import get_task

        rows = [e.question for e in get_task("word-problems").examples("test")[:count]]
    if len(set(rows)) < count:
        raise SystemExit(f"need {count} distinct questions, found {len(set(rows))}")
    return rows


def run_backend(backend, prompts, n: int, max_tokens: int, seed: int) -> tuple[int, float]:
    from selfimprove.records import SamplingParams

    params = SamplingParams(n=n, temperature=0.0 if n == 1 else 1.0, max_tokens=max_tokens, seed=seed)
    start = time.perf_counter()
    out = backend.generate(prompts, params)
    elapsed = time.perf_counter() - start
    return sum(c.completion_tokens + (c.finish_reason == "stop") for row in out for c in row), elapsed


def run_generate(backend, prompts, n: int, max_tokens: int, seed: int) -> tuple[int, float]:
    import torch

    from selfimprove.backends.batching import left_pad

    model, tok = backend.model, backend.tokenizer
    ids, mask, _ = left_pad([backend.encode_prompt(p) for p in prompts], backend._pad, model.device)
    sampling = ({"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0} if n > 1
                else {"do_sample": False})
    torch.manual_seed(seed)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_tokens,
                             num_return_sequences=n,
                             pad_token_id=tok.pad_token_id, **sampling)
    elapsed = time.perf_counter() - start
    tokens = 0
    for row in out[:, ids.shape[1]:].tolist():  # tokens up to and including the first EOS
        first = next((i for i, t in enumerate(row) if t in backend._eos), None)
        tokens += len(row) if first is None else first + 1
    return tokens, elapsed


def prompt_positions(backend, prompts, n: int) -> tuple[int, int]:
    """Prompt positions the forward passes compute: (hf backend, ``generate``)."""
    from selfimprove.backends.batching import shared_prefix
    from selfimprove.backends.prefill import length_groups

    ids = [tuple(backend.encode_prompt(p)) for p in prompts]
    k = shared_prefix(ids)
    rest = [len(i) - k for i in ids]
    ours = k + sum(len(g) * max(rest[i] for i in g) for g in length_groups(rest))
    return ours, n * len(ids) * max(map(len, ids))


def compare(backend, prompts, n: int, max_tokens: int, repeats: int) -> tuple[float, float]:
    ours, theirs = [], []
    a, b = prompt_positions(backend, prompts, n)
    print(f"  n={n}: prompt positions computed: hf backend {a}, generate {b}", flush=True)
    for rep in range(repeats):
        tok_a, sec_a = run_backend(backend, prompts, n, max_tokens, seed=rep)
        tok_b, sec_b = run_generate(backend, prompts, n, max_tokens, seed=rep)
        ours.append(tok_a / sec_a)
        theirs.append(tok_b / sec_b)
        print(f"  n={n} repeat {rep}: hf backend {tok_a} tok in {sec_a:.1f}s ({tok_a / sec_a:.1f} tok/s) | "
              f"generate {tok_b} tok in {sec_b:.1f}s ({tok_b / sec_b:.1f} tok/s)", flush=True)
    return statistics.median(ours), statistics.median(theirs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--sample-prompts", type=int, default=4)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=DATA, help="GSM8K test.jsonl (default: ../shared/data)")
    args = parser.parse_args(argv)
    from selfimprove.cli.main import quiet_third_party

    quiet_third_party()  # no transformers progress bars or warnings, as on the command line

    import torch
    from bench_train_mfu import matmul_peak

    from selfimprove.backends.hf import HFBackend
    from selfimprove.models.smollm2 import ensure_smollm2

    torch.set_num_threads(args.threads)
    backend = HFBackend(str(ensure_smollm2()))
    params = sum(p.numel() for p in backend.model.parameters())  # tied embedding counted once
    prompts = questions(args.prompts, args.data)
    print(f"smollm2 ({params / 1e6:.1f}M params), {args.threads} threads, chat template on; greedy "
          f"{args.prompts} prompts, sampling {args.sample_prompts} prompts x n={args.n}; {args.max_tokens} "
          "new tokens", flush=True)
    run_backend(backend, prompts[:2], 2, 4, 0)  # warm-up
    run_generate(backend, prompts[:2], 2, 4, 0)
    peak = matmul_peak(args.threads)
    greedy = compare(backend, prompts, 1, args.max_tokens, args.repeats)
    sampled = compare(backend, prompts[:args.sample_prompts], args.n, args.max_tokens, args.repeats)
    peak = (peak + matmul_peak(args.threads)) / 2  # before and after, as load drifts
    limit = peak / (2 * params)
    print(f"fp32 matmul peak {peak / 1e9:.1f} GFLOP/s -> decoding limit {limit:.0f} tokens/s")
    for name, (a, b), goal in (("greedy", greedy, 1.0), (f"sampling n={args.n}", sampled, 2.0)):
        print(f"{name}: hf backend {a:.1f} tok/s, generate {b:.1f} tok/s: ratio {a / b:.2f}x (goal >= "
              f"{goal:.1f}x, {'met' if a / b >= goal else 'NOT met'}); {a / limit:.1%} of the "
              "matmul-peak limit")


if __name__ == "__main__":
    main()
