"""Benchmark: generated tokens/s of the hf backend vs ``model.generate(num_return_sequences=n)``.

Both run side by side in one process on the same model and the same batch of prompts (32 prompts x 16
samples by default, temperature 1, no top-k/top-p), and the ratio is printed. The hf backend prefills each
distinct prompt once and drops finished rows; ``generate`` prefills every copy and decodes until all rows end.

Tokens counted: every generated token, EOS included, for both. Without ``--model`` a random Llama the size of
the built-in model (hidden 128, 2 layers, 4 heads, FFN 512, char tokenizer) is built in a temporary directory.

    python bench/bench_hf_generate.py [--model PATH] [--device cuda] [--prompts 32] [--n 16] [--max-tokens 64]

Not covered: memory use, accuracy, long contexts, other sampling settings.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path


def build_model(path: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from selfimprove.tiny.tokenizer import make_tokenizer

    tok = make_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_prompts(count: int, seed: int = 0) -> list[str]:
    """Few-shot arithmetic prompts of varied length (about 60-150 characters)."""
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        shots = [f"q: {rng.randint(1, 10**rng.randint(1, 6))}+{rng.randint(1, 999)}=? a: "
                 f"{rng.randint(1, 999)}\n"
                 for _ in range(rng.randint(1, 4))]
        prompts.append("".join(shots) + f"q: {rng.randint(1, 99999)}+{rng.randint(1, 99999)}=? a:")
    return prompts


def run_backend(backend, prompts: list[str], n: int, max_tokens: int, seed: int) -> tuple[int, float]:
    from selfimprove.records import SamplingParams

    params = SamplingParams(n=n, temperature=1.0, max_tokens=max_tokens, seed=seed)
    _sync(backend.model)
    start = time.perf_counter()
    out = backend.generate(prompts, params)
    _sync(backend.model)
    elapsed = time.perf_counter() - start
    # completion_tokens leaves out the EOS token; count it, as generate's output holds it
    return sum(c.completion_tokens + (c.finish_reason == "stop") for row in out for c in row), elapsed


def run_generate(model, tokenizer, prompts: list[str], n: int, max_tokens: int,
                 seed: int) -> tuple[int, float]:
    import torch

    inputs = tokenizer(prompts, return_tensors="pt", padding=True).to(model.device)
    torch.manual_seed(seed)
    _sync(model)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**inputs, do_sample=True, num_return_sequences=n, max_new_tokens=max_tokens,
                             temperature=1.0, top_k=0, top_p=1.0, pad_token_id=tokenizer.pad_token_id)
    _sync(model)
    elapsed = time.perf_counter() - start
    new = out[:, inputs["input_ids"].shape[1]:]
    eos = tokenizer.eos_token_id
    tokens = 0
    for row in new.tolist():  # tokens up to and including the first EOS
        tokens += row.index(eos) + 1 if eos in row else len(row)
    return tokens, elapsed


def _sync(model) -> None:
    import torch

    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model",
                        help="a local HF causal-LM directory (default: a random built-in-size Llama)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from selfimprove.cli.main import quiet_third_party

    quiet_third_party()  # no transformers progress bars or warnings, as on the command line

    import torch

    from selfimprove.backends.hf import HFBackend

    with tempfile.TemporaryDirectory() as tmp:
        path = args.model or str(build_model(Path(tmp) / "model"))
        backend = HFBackend(path, device=args.device, dtype=args.dtype)
        model, tokenizer = backend.model, backend.tokenizer
        tokenizer.padding_side = "left"
        prompts = make_prompts(args.prompts)
        print(f"model {path}  device {args.device}  threads {torch.get_num_threads()}  "
              f"{args.prompts} prompts x {args.n} samples, max {args.max_tokens} new tokens, "
              f"prompt tokens {min(map(len, map(backend.encode_prompt, prompts)))}-"
              f"{max(map(len, map(backend.encode_prompt, prompts)))}")
        run_backend(backend, prompts[:2], 2, 4, 0)  # warm-up
        run_generate(model, tokenizer, prompts[:2], 2, 4, 0)
        ours, theirs = [], []
        for rep in range(args.repeats):  # interleaved, so drift in machine load hits both
            tok_a, sec_a = run_backend(backend, prompts, args.n, args.max_tokens, seed=rep)
            tok_b, sec_b = run_generate(model, tokenizer, prompts, args.n, args.max_tokens, seed=rep)
            ours.append(tok_a / sec_a)
            theirs.append(tok_b / sec_b)
            print(f"  repeat {rep}: hf backend {tok_a} tok in {sec_a:.2f}s ({tok_a / sec_a:,.0f} tok/s) | "
                  f"generate {tok_b} tok in {sec_b:.2f}s ({tok_b / sec_b:,.0f} tok/s)")
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"median tokens/s: hf backend {a:,.0f}  generate(num_return_sequences={args.n}) {b:,.0f}  "
              f"ratio {a / b:.2f}x")


if __name__ == "__main__":
    main()
