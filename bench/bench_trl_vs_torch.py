"""Benchmark: TRL ``SFTTrainer`` step time vs a plain torch training loop on the same batches.

Both run side by side in one process, on copies of the same model with the same initial weights, over the
*same* batches and interleaved: after each TRL step, the plain loop takes one step on the batch TRL just used
(TRL's tokenisation, completion-only labels and collator), so load changes on a shared machine hit both alike
and the only difference is the training step itself — TRL/Trainer's bookkeeping (accelerate,
callbacks, loss metrics such as entropy and token accuracy, logging) against ``loss.backward(); opt.step()``.
TRL runs with the settings ``selfimprove.training.sft`` uses (no checkpointing, fp32 on CPU, no saving, no
eval, dataloader workers 0) and ``logging_steps`` large, as the loop's defaults would be in a long run.

Reported: median seconds per optimiser step (after ``--warmup`` steps) of each, the ratio TRL / torch (goal
<= 1.5x), and training tokens/s of each (non-padding tokens). Without ``--model`` a random Llama the size of
the built-in model (hidden 128, 2 layers, 4 heads, FFN 512, char tokenizer) is built in a temporary directory;
rows are arithmetic solve prompts with their gold solutions.

    python bench/bench_trl_vs_torch.py [--model PATH] [--steps 60] [--batch-size 32] [--packing]

Measured on the 2-core CPU these sessions share (TRL 1.16, transformers 5.23, torch 2.13, batch 32, ~2.2k
tokens/step): 1.37x, 1.44x and 1.64x while the machine was lightly loaded (TRL ~120-155 ms/step vs torch
~85-95 ms), 1.05-1.23x under heavy load (both ~0.2-3.9 s/step). TRL's fixed per-step cost (its chunked
log-prob LM head computing entropy and token accuracy, gradient clipping, callbacks) matters most when a step
is short. Packing (TRL's best-fit packing, padding-free) was slower per token on CPU with SDPA, so it is off.

Not covered: GPU timings (run it there with --model), LoRA, gradient accumulation, multi-device.
"""

from __future__ import annotations

import argparse
import copy
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
                         eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_rows(n: int) -> list[dict[str, str]]:
    from selfimprove.tasks.arithmetic import ArithmeticTask

    task = ArithmeticTask(n_train=n)
    return [{"prompt": task.prompt(e), "completion": task.solution(e)} for e in task.examples("train")[:n]]


def run_side_by_side(model, twin, tok, rows, args, tmp: str) -> tuple[list[float], list[float], list[int]]:
    """Per-step seconds of TRL and of the plain loop, interleaved: after each TRL step the plain loop takes
    its step on the same batch, so load changes on a shared machine hit both alike."""
    import datasets
    import torch
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTTrainer

    from selfimprove.training.sft import SFTSettings, sft_config

    # the optimiser TRL's Trainer uses by default with torch >= 2.8 (adamw_torch_fused), so steps compare
    # alike
    opt = torch.optim.AdamW(twin.parameters(), lr=1e-3, weight_decay=0.0, fused=True)
    twin.train()
    trl_times, torch_times, tokens = [], [], []

    class Capture(SFTTrainer):
        def training_step(self, model, inputs, *rest, **kw):
            self.batch = {k: inputs[k] for k in ("input_ids", "attention_mask", "labels") if k in inputs}
            return super().training_step(model, inputs, *rest, **kw)

    class SideBySide(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            trl_times.append(time.perf_counter() - self.t0)
            batch = trainer.batch
            tokens.append(int(batch["attention_mask"].sum()) if "attention_mask" in batch
                          else batch["input_ids"].numel())
            t0 = time.perf_counter()
            loss = twin(**batch).loss  # the model's own shifted cross-entropy, prompt tokens at -100
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            torch_times.append(time.perf_counter() - t0)

    datasets.disable_progress_bars()
    settings = SFTSettings(lr=1e-3, batch_size=args.batch_size, max_steps=args.steps, epochs=100,
                           packing=args.packing, logging_steps=10_000, max_length=args.max_length)
    trainer = Capture(model=model, args=sft_config(settings, tmp, len(rows)),
                      train_dataset=datasets.Dataset.from_list(rows), processing_class=tok,
                      callbacks=[SideBySide()])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return trl_times, torch_times, tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="HF model dir (default: a random model the size of the built-in one)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--packing", action="store_true",
                    help="TRL packing (the torch loop gets the packed batches)")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads")
    args = ap.parse_args()
    from selfimprove.cli.main import quiet_third_party

    quiet_third_party()  # no transformers progress bars or warnings, as on the command line

    import torch

    from selfimprove.training.sft import load_policy

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.model) if args.model else build_model(Path(tmp) / "model")
        model, tok = load_policy(path)
        twin = copy.deepcopy(model)
        trl_times, torch_times, tokens = run_side_by_side(model, twin, tok, make_rows(args.rows), args, tmp)
    w = args.warmup
    trl_s, torch_s = statistics.median(trl_times[w:]), statistics.median(torch_times[w:])
    tokens_per_step = statistics.mean(tokens)
    print(f"threads {torch.get_num_threads()} · batch {args.batch_size} · {len(tokens)} steps "
          f"(median after {w} warm-up) · {tokens_per_step:.0f} tokens/step · packing {args.packing}")
    print(f"TRL SFTTrainer : {trl_s * 1e3:7.1f} ms/step  {tokens_per_step / trl_s:9.0f} tokens/s")
    print(f"plain torch    : {torch_s * 1e3:7.1f} ms/step  {tokens_per_step / torch_s:9.0f} tokens/s")
    print(f"ratio TRL / torch = {trl_s / torch_s:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
