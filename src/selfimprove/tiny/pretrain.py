"""Pretraining the built-in model from scratch: a small ``LlamaForCausalLM`` on the arithmetic family.

A plain torch loop (AdamW, linear warm-up then cosine decay, loss on completion tokens only) over the seeded
stream of ``tiny/data.py``, with a rich progress bar. The result is an ordinary Hugging Face model directory
(``save_pretrained`` for model and tokenizer) plus ``selfimprove.json``: the config, its fingerprint, the
weights' sha256 (two pretrainings of one preset share the fingerprint, not the weights), steps, final loss,
held-out greedy accuracy in range and one term beyond, verify accuracy, wall time.

Not covered: distributed or GPU training (a real model never comes through here), resuming an interrupted
pretraining (it restarts; it takes about two minutes), mixed precision.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path

from ..files import MODEL_METADATA, weights_record
from .config import TinyConfig


def build_model(config: TinyConfig, tokenizer):
    """A freshly initialised Llama of ``config``'s size (``rope_theta`` sits in ``rope_parameters`` in
    transformers 5.x; the default 10000 is fine for sequences of a few hundred characters)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=config.hidden, intermediate_size=config.ffn,
                      num_hidden_layers=config.layers, num_attention_heads=config.heads,
                      num_key_value_heads=config.heads, max_position_embeddings=config.max_positions,
                      tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(config.seed)
    return LlamaForCausalLM(cfg)


def lr_at(step: int, config: TinyConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``final_lr_frac * lr``."""
    warm = max(1, int(config.warmup * config.steps))
    if step < warm:
        return config.lr * (step + 1) / warm
    t = (step - warm) / max(1, config.steps - warm)
    return config.lr * (config.final_lr_frac + (1 - config.final_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def pretrain(config: TinyConfig, out_dir: str | Path, *, name: str = "tiny", progress: bool = True,
             evaluate: bool = True) -> dict:
    """Train ``config`` from scratch and save it to ``out_dir``; return the metadata written beside it."""
    import torch

    from .data import Stream, batches, make_task
    from .evaluate import solve_accuracy, verify_accuracy
    from .tokenizer import make_tokenizer

    out_dir = Path(out_dir)
    start = time.perf_counter()
    old_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        tok = make_tokenizer()
        model = build_model(config, tok)
        model.train()
        vocab, first = tok.get_vocab(), int(config.solve_first * config.steps)
        solve = batches(Stream(config, vocab, tok.eos_token_id, mix={"solve": 1.0}), config.batch_size,
                        tok.pad_token_id)
        mixed = batches(Stream(config, vocab, tok.eos_token_id, salt=1), config.batch_size, tok.pad_token_id)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.98),
                                weight_decay=config.weight_decay)
        losses, tokens = [], 0
        with _progress(progress, name, config.steps) as bar:
            for step in range(config.steps):
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, config)
                ids, labels = next(solve if step < first else mixed)
                # Right padding and a causal mask: real tokens never see the pads, so no attention mask.
                loss = model(input_ids=ids, labels=labels).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                losses.append(loss.item())
                tokens += int((ids != tok.pad_token_id).sum())  # real tokens, pads excluded
                bar(step, losses[-1], tokens / (time.perf_counter() - start))
        train_s = time.perf_counter() - start
        model.eval()
        meta = {"name": name, "config": config.to_dict(), "fingerprint": config.fingerprint(),
                "task": "arithmetic:" + ",".join(f"{k}={v}" for k, v in config.task_options().items()),
                "steps": config.steps, "params": sum(p.numel() for p in model.parameters()),
                "first_loss": _mean(losses[:20]), "final_loss": _mean(losses[-20:]), "train_tokens": tokens,
                "train_seconds": round(train_s, 2), "torch_threads": torch.get_num_threads(),
                "machine": platform.machine(), "cpus": os.cpu_count()}
        if evaluate:
            task = make_task(config)
            n = config.eval_examples
            meta["dev_greedy_accuracy"] = solve_accuracy(model, tok, task, task.examples("dev")[:n])
            meta["test_hard_greedy_accuracy"] = solve_accuracy(model, tok, task,
                                                               task.examples("test-hard")[:n])
            if config.mix.get("verify", 0) > 0:
                meta["dev_verify_accuracy"] = verify_accuracy(model, tok, task, task.examples("dev")[:n])
        meta["wall_seconds"] = round(time.perf_counter() - start, 2)
        _save(model, tok, meta, out_dir)
        return meta
    finally:
        torch.set_num_threads(old_threads)


def _save(model, tok, meta: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    meta.update(weights_record(out_dir))  # which weights: the preset's fingerprint names only the config
    (out_dir / MODEL_METADATA).write_text(json.dumps(meta, indent=2, sort_keys=True))


def read_metadata(model_dir: str | Path) -> dict | None:
    path = Path(model_dir) / MODEL_METADATA
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


class _progress:
    """A rich progress bar showing loss and tokens/s; silent when ``enabled`` is False."""

    def __init__(self, enabled: bool, name: str, total: int) -> None:
        self.enabled, self.name, self.total = enabled, name, total

    def __enter__(self):
        if not self.enabled:
            return lambda *a: None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(TextColumn("pretraining [bold]{task.fields[name]}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[info]}"),
                            TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
        self.bar.start()
        self.tid = self.bar.add_task("pretrain", total=self.total, name=self.name, info="")

        def update(step: int, loss: float, tps: float) -> None:
            if step % 10 == 0 or step + 1 == self.total:
                self.bar.update(self.tid, completed=step + 1,
                                info=f"loss {loss:.3f} · {tps / 1000:.1f}k tok/s")
        return update

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()
