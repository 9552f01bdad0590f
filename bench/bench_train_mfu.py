"""Benchmark (not a test): training throughput of the built-in tiny model as model-FLOPs utilisation (MFU).

MFU = 6 · params · (real training tokens/s) ÷ (fp32 matmul peak FLOP/s), the peak measured on this machine in
the same run (a large square ``torch.mm``, best of several repeats, measured before and after the training
variants so that drift from other load shows). Attention FLOPs are not counted (about 5 % at these lengths),
and pad tokens count as waste. Each variant trains the same model on the same pretraining stream for a few
steps after a warm-up; the printed ratios compare variants measured side by side in this one run. On a shared
machine the absolute numbers are noisy: trust the ratios, and rerun.

    .venv/bin/python bench/bench_train_mfu.py              # the default variants (~2 minutes)
    .venv/bin/python bench/bench_train_mfu.py --quick      # fewer steps
    .venv/bin/python bench/bench_train_mfu.py --compile    # also torch.compile (slow to compile)
"""

from __future__ import annotations

import argparse
import time


def matmul_peak(threads: int, n: int = 1024, repeats: int = 5, seconds: float = 0.5) -> float:
    """Best fp32 ``torch.mm`` rate in FLOP/s over ``repeats`` timed windows of about ``seconds`` each."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            torch.mm(a, b)
            count += 1
        best = max(best, 2 * n ** 3 * count / (time.perf_counter() - start))
    return best


class Variant:
    """One training set-up of the ``tiny`` preset's model, with its batches generated up front (data
    generation is not what is measured)."""

    def __init__(self, name: str, threads: int, batch_size: int, steps: int, *, compile_model: bool = False,
                 bf16: bool = False, seed: int = 0) -> None:
        import torch

        from selfimprove.tiny.config import PRESETS
        from selfimprove.tiny.data import Stream, batches
        from selfimprove.tiny.pretrain import build_model
        from selfimprove.tiny.tokenizer import make_tokenizer

        self.name, self.threads, self.batch_size, self.steps, self.bf16 = (name, threads, batch_size, steps,
                                                                           bf16)
        config = PRESETS["tiny"].replace(batch_size=batch_size, seed=seed)
        self.tok = make_tokenizer()
        self.model = build_model(config, self.tok)
        self.params = sum(p.numel() for p in self.model.parameters())
        self.model.train()
        self.forward = torch.compile(self.model, dynamic=True) if compile_model else self.model
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        data = batches(Stream(config, self.tok.get_vocab(), self.tok.eos_token_id), batch_size,
                       self.tok.pad_token_id)
        self.data = [next(data) for _ in range(steps)]
        self.best = 0.0
        self.best_padded = 0.0
        self.window()  # warm-up (and compilation)

    def window(self) -> float:
        """Train ``steps`` steps; return real tokens/s and keep the best window."""
        import torch

        torch.set_num_threads(self.threads)
        real = padded = 0
        t0 = time.perf_counter()
        for ids, labels in self.data:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                loss = self.forward(input_ids=ids, labels=labels).loss
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            real += int((ids != self.tok.pad_token_id).sum())
            padded += ids.numel()
        dt = time.perf_counter() - t0
        self.best, self.best_padded = max(self.best, real / dt), max(self.best_padded, padded / dt)
        return real / dt


def main(argv: list[str] | None = None) -> None:
    import os

    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer and shorter timing windows")
    ap.add_argument("--compile", action="store_true", help="add a torch.compile variant (slow to compile)")
    ap.add_argument("--bf16", action="store_true",
                    help="add a bf16-autocast variant (MFU still vs fp32 peak)")
    args = ap.parse_args(argv)
    steps, rounds = (6, 2) if args.quick else (10, 4)
    cores = os.cpu_count() or 1
    threads = sorted({1, cores})
    print(f"torch {torch.__version__}, {cores} CPUs; each variant: best of {rounds} interleaved windows "
          f"of {steps} steps")
    peaks = {t: matmul_peak(t) for t in threads}
    for t, p in peaks.items():
        print(f"fp32 matmul peak, {t} thread(s): {p / 1e9:.1f} GFLOP/s")

    from selfimprove.tiny.config import PRESETS

    specs = [("pretrain loop as configured", torch.get_num_threads(), PRESETS["tiny"].batch_size, {})]
    specs += [(f"threads={t}", t, b, {}) for t in threads for b in (32, 64, 128)]
    if args.compile:
        specs.append(("torch.compile", cores, 64, {"compile_model": True}))
    if args.bf16:
        specs.append(("bf16 autocast", cores, 64, {"bf16": True}))
    variants = [Variant(name, t, b, steps, **extra) for name, t, b, extra in specs]
    for _ in range(rounds):  # interleaved, so that a burst of other load hits every variant alike
        for v in variants:
            v.window()
    after = {t: matmul_peak(t) for t in threads}
    peak = {t: max(peaks[t], after[t]) for t in threads}
    rows = []
    for v in variants:
        mfu = 6 * v.params * v.best / peak[v.threads]
        rows.append((v, mfu))
        print(f"  {v.name:36s} threads={v.threads} batch={v.batch_size:4d}  {v.best / 1e3:6.1f}k tok/s "
              f"(padded {v.best_padded / 1e3:5.1f}k)  MFU {mfu:5.1%}")
    for t in threads:
        print(f"fp32 matmul peak again, {t} thread(s): {after[t] / 1e9:.1f} GFLOP/s "
              f"({after[t] / peaks[t]:.2f}x the first measurement; far from 1 means other load interfered)")
    base, best = rows[0], max(rows, key=lambda r: r[1])
    print(f"\nMFU (6 x {base[0].params:,} params x tokens/s / fp32 matmul peak): plain loop {base[1]:.1%}; "
          f"best '{best[0].name}, batch={best[0].batch_size}' {best[1]:.1%} ({best[1] / base[1]:.2f}x); "
          f"goal >= 50%")


if __name__ == "__main__":
    main()
