"""Benchmark: a GRPO step (TRL ``GRPOTrainer``, the project's ``training/grpo.py`` path) against an SFT step.

Both train the built-in ``tiny`` model (two copies of the same start) on the same rows: the arithmetic train
problems it was pretrained on. One optimiser step of each covers the same number of sequences
(``--batch-size``): GRPO samples ``--num-generations`` completions of ``batch_size / num_generations`` prompts
and scores them with the gold reward (``as_trl(GoldReward())``, as ``train --method grpo --reward gold``
does); SFT (``SFTTrainer`` through ``sft_config``, as ``train --method star`` does) takes ``batch_size``
prompt + gold-solution rows. Both run with the project's settings: ``GRPOSettings`` (β = 0.04, so a KL
reference forward pass every step; temperature 0.8; up to ``--max-completion-length`` new tokens) and
``SFTSettings`` (lr 3e-5), one step per generation batch (TRL's default ``steps_per_generation = 1``).

They run side by side in one process, interleaved in blocks: ``--blocks`` times, ``--steps`` GRPO steps
then ``--steps`` SFT steps, each block a fresh trainer continuing from its own copy's weights, so load
changes on a shared machine hit both alike. The first step of every block is dropped (trainer warm-up).
Within a GRPO step the time spent in TRL's ``_generate`` (sampling the completions) and in
``_generate_and_score_completions`` (sampling + rewards + the old-policy / reference log-probabilities) is
recorded.

Printed: medians (ms/step) and the ratios, all measured in the same run:
- GRPO step / SFT step, generation included;
- GRPO step without sampling / SFT step (generation excluded);
- GRPO update only (without sampling, scoring and reference pass) / SFT step;
- the share of a GRPO step spent sampling, and in sampling + scoring;
- tokens per step of each (GRPO: sampled completion tokens; SFT: non-padding tokens).

    OMP_NUM_THREADS=1 python bench/bench_grpo_step.py [--model tiny] [--blocks 3] [--steps 5]
    python bench/bench_grpo_step.py --model micro --blocks 1 --steps 2 --max-completion-length 16  # a check

Not covered: GPU timings (run it there with a real model), vLLM generation, LoRA, the hf backend's
shared-prefix sampling (TRL samples every completion of a group with the prompt repeated).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time

TASK = "arithmetic:terms=2-4,digits=1-2"


def grpo_block(model, tok, task, examples, args, tmp: str, seed: int) -> list[dict[str, float]]:
    """``args.steps`` GRPO steps on ``model``; per step: seconds of the step, of sampling, of prep
    (sampling + scoring + log-probabilities) and the sampled completion tokens."""
    import datasets
    from transformers import PrinterCallback, TrainerCallback

    from selfimprove.chat import model_text
    from selfimprove.training.grpo import GRPOSettings, grpo_config, trainer_class
    from selfimprove.training.rewards import as_trl
    from selfimprove.training.rewards.base import GoldReward

    steps: list[dict[str, float]] = []

    class Timed(trainer_class()):
        def _generate(self, prompts):
            t0 = time.perf_counter()
            out = super()._generate(prompts)
            steps[-1]["sample"] += time.perf_counter() - t0
            steps[-1]["tokens"] += sum(len(ids) for ids in out[1])  # (prompt_ids, completion_ids, ...)
            return out

        def _generate_and_score_completions(self, inputs):
            t0 = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            steps[-1]["prep"] += time.perf_counter() - t0
            return out

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            steps.append({"step": 0.0, "sample": 0.0, "prep": 0.0, "tokens": 0.0})
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            steps[-1]["step"] = time.perf_counter() - self.t0

    settings = GRPOSettings(max_steps=args.steps, num_generations=args.num_generations,
                            batch_size=args.batch_size, max_completion_length=args.max_completion_length,
                            seed=seed)
    rows = [{"prompt": model_text(tok, task.prompt(e)), "id": e.id} for e in examples]
    reward = as_trl(GoldReward(), task, examples, max_tokens=args.max_completion_length)
    trainer = Timed(model=model, reward_funcs=[reward], args=grpo_config(settings, tmp),
                    train_dataset=datasets.Dataset.from_list(rows), processing_class=tok, callbacks=[Clock()])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return steps


def sft_block(model, tok, task, examples, args, tmp: str, seed: int) -> list[dict[str, float]]:
    """``args.steps`` SFT steps on ``model``; per step: seconds and non-padding tokens."""
    import datasets
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTTrainer

    from selfimprove.chat import model_text
    from selfimprove.training.sft import SFTSettings, sft_config

    steps: list[dict[str, float]] = []

    class Capture(SFTTrainer):
        def training_step(self, model, inputs, *rest, **kw):
            mask = inputs.get("attention_mask")
            steps[-1]["tokens"] = (float(mask.sum()) if mask is not None
                                   else float(inputs["input_ids"].numel()))
            return super().training_step(model, inputs, *rest, **kw)

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            steps.append({"step": 0.0, "tokens": 0.0})
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            steps[-1]["step"] = time.perf_counter() - self.t0

    settings = SFTSettings(batch_size=args.batch_size, max_steps=args.steps, epochs=100, seed=seed)
    rows = [{"prompt": model_text(tok, task.prompt(e)), "completion": task.solution(e)} for e in examples]
    trainer = Capture(model=model, args=sft_config(settings, tmp, len(rows)),
                      train_dataset=datasets.Dataset.from_list(rows), processing_class=tok,
                      callbacks=[Clock()])
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return steps


def median(steps: list[dict[str, float]], key: str) -> float:
    return statistics.median(s[key] for s in steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny", help="built-in name or HF model dir (default: tiny)")
    ap.add_argument("--blocks", type=int, default=3, help="GRPO/SFT alternations")
    ap.add_argument("--steps", type=int, default=5, help="steps per block (the first is dropped)")
    ap.add_argument("--batch-size", type=int, default=16, help="sequences per optimiser step, both trainers")
    ap.add_argument("--num-generations", type=int, default=8, help="GRPO group size")
    ap.add_argument("--max-completion-length", type=int, default=128)
    ap.add_argument("--rows", type=int, default=128, help="train problems (the same for both)")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads")
    args = ap.parse_args()
    from selfimprove.cli.main import quiet_third_party

    quiet_third_party()  # no transformers progress bars or warnings, as on the command line
    if args.steps < 2:
        ap.error("--steps must be >= 2 (the first step of a block is dropped)")

    import datasets
    import torch

    from selfimprove.registry import build_task
    from selfimprove.tiny.models import resolve_model
    from selfimprove.training.sft import load_policy

    if args.threads:
        torch.set_num_threads(args.threads)
    datasets.disable_progress_bars()
    path = resolve_model(args.model)
    task = build_task(TASK)
    examples = task.examples("train")[:args.rows]
    grpo_model, tok = load_policy(path)
    sft_model = copy.deepcopy(grpo_model)
    grpo, sft = [], []
    for b in range(args.blocks):
        with tempfile.TemporaryDirectory(prefix="bench-grpo-") as tmp:
            grpo += grpo_block(grpo_model, tok, task, examples, args, tmp, seed=b)[1:]
        with tempfile.TemporaryDirectory(prefix="bench-sft-") as tmp:
            sft += sft_block(sft_model, tok, task, examples, args, tmp, seed=b)[1:]
    report(grpo, sft, args, torch.get_num_threads())


def report(grpo: list[dict[str, float]], sft: list[dict[str, float]], args, threads: int) -> None:
    g_step, g_sample, g_prep = (median(grpo, k) for k in ("step", "sample", "prep"))
    no_sample = statistics.median(s["step"] - s["sample"] for s in grpo)
    update = statistics.median(s["step"] - s["prep"] for s in grpo)
    s_step = median(sft, "step")
    share = statistics.median(s["sample"] / s["step"] for s in grpo)
    share_prep = statistics.median(s["prep"] / s["step"] for s in grpo)
    print(f"model {args.model} · threads {threads} · {args.batch_size} sequences/step (GRPO: "
          f"{args.batch_size // args.num_generations} prompts x {args.num_generations}) · "
          f"{args.blocks} blocks x {args.steps - 1} timed steps each")
    print(f"GRPO step           : {g_step * 1e3:8.1f} ms  ({median(grpo, 'tokens'):.0f} sampled tokens/step)")
    print(f"  sampling          : {g_sample * 1e3:8.1f} ms")
    print(f"  sampling + scoring: {g_prep * 1e3:8.1f} ms  (rewards, old/reference log-probabilities)")
    print(f"SFT step            : {s_step * 1e3:8.1f} ms  ({median(sft, 'tokens'):.0f} tokens/step)")
    print(f"ratio GRPO / SFT, generation included        = {g_step / s_step:.2f}x")
    print(f"ratio GRPO / SFT, generation excluded        = {no_sample / s_step:.2f}x")
    print(f"ratio GRPO update only / SFT (no scoring)    = {update / s_step:.2f}x")
    print(f"share of a GRPO step spent sampling          = {100 * share:.0f} %")
    print(f"share spent sampling + scoring               = {100 * share_prep:.0f} %")


if __name__ == "__main__":
    main()
