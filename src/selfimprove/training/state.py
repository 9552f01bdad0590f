"""What the round loop (``loop.py``) keeps between phases: the run's config, its directory, the models of its
rounds (the last one used stays in memory), the examples of each round, and the reuse of another run's round-0
evaluation. Methods call the public helpers here through the loop they are given."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..records import Example, Trace
from .rundir import RunDir, sync_store


class RunState:
    """The state of one run between phases (``RoundLoop`` adds the phases)."""

    def __init__(self, cfg, task, base: Path, rd: RunDir, *, store=None, run_id: str | None = None,
                 make_backend: Callable[[str], Any] | None = None, log: Callable[[str], None] = print,
                 reuse_start: RunDir | None = None, scope: str = "",
                 backend_options: dict[str, Any] | None = None, shared_samples=None) -> None:
        self.cfg, self.method, self.task, self.base, self.rd = cfg, cfg.method, task, base, rd
        self.backend_options = dict(backend_options or {})  # the hf backend's options from the model spec
        self.chat = bool(self.backend_options.get("chat", True))  # generation and trainers format alike
        self.store, self.run_id, self.log = store, run_id, log
        self.custom_backend = make_backend is not None  # then every generation goes through it
        self.make_backend = make_backend or self._hf_backend
        self.memory: tuple[int, Any, Any] | None = None  # (round, model, tokenizer) of the last policy used
        self.reuse_start = reuse_start
        self.shared_samples = shared_samples  # a MemoryCache for round 1's generation (run_loop's docstring)
        self.start_greedy: dict[str, list[Trace]] = {}  # round 0 greedy traces computed elsewhere (run_loop)
        self.scope = f"{scope.rstrip('/')}/" if scope else ""  # prefix of the store scopes

    # ---- for methods ---------------------------------------------------------------------------------------
    def train_slice(self, r: int) -> tuple[list[Example], str]:
        """Round r's slice of the train split: ``train_limit`` examples, a fresh slice each round with
        ``rotate`` (wrapping around), else the first ones."""
        cfg = self.cfg
        pool = self.task.examples(cfg.train_split)
        if cfg.train_limit is None or cfg.train_limit >= len(pool) or not pool:
            return list(pool), cfg.train_split
        start = ((r - 1) * cfg.train_limit) % len(pool) if cfg.rotate else 0
        return [pool[(start + i) % len(pool)] for i in range(cfg.train_limit)], cfg.train_split

    def examples(self, split: str, limit: int | None) -> list[Example]:
        """The first ``limit`` examples of ``split`` (all when None)."""
        examples = self.task.examples(split)
        return list(examples if limit is None else examples[:limit])

    def eval_split_names(self) -> list[str]:
        """Every split evaluated each round: dev, ``eval_splits`` and the method's own."""
        return list(dict.fromkeys([self.cfg.dev_split, *self.cfg.eval_splits, *self.method.eval_splits()]))

    def path(self, r: int) -> Path:
        """Round r's model directory (round 0: the base model)."""
        return self.base if r == 0 else self.rd.round_dir(r)

    def trainer_settings(self, objective: str, seed: int):
        """The ``sft`` or ``dpo`` settings of the config with a round's seed."""
        return dataclasses.replace(getattr(self.cfg, objective), seed=seed)

    # ---- models --------------------------------------------------------------------------------------------
    def policy(self, r: int):
        """(model, tokenizer) of round r, from memory when it is the last one used, else loaded from disk.
        Training updates the returned model in place; round r's weights stay safe on disk."""
        if self.memory is not None and self.memory[0] == r:
            return self.memory[1], self.memory[2]
        if self.custom_backend:  # the generation backend may hold no weights: load them for training
            from .sft import load_policy

            return load_policy(self.path(r))
        backend = self.make_backend(str(self.path(r)))
        return backend.model, backend.tokenizer

    def backend(self, r: int):
        """A backend generating with round r's model."""
        if self.memory is not None and self.memory[0] == r and not self.custom_backend:
            from ..backends.hf import HFBackend

            kept = {k: v for k, v in self.backend_options.items() if k in ("chat", "max_batch_tokens")}
            return HFBackend.from_model(self.memory[1], self.memory[2], name=str(self.path(r)), **kept)
        backend = self.make_backend(str(self.path(r)))
        if not self.custom_backend:
            self.memory = (r, backend.model, backend.tokenizer)
        return backend

    def _hf_backend(self, path: str):
        from ..backends.hf import HFBackend

        device = self.cfg.device
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return HFBackend(path, **{"device": device, **self.backend_options})  # the spec's device= wins

    # ---- round 0 and resuming ------------------------------------------------------------------------------
    def start_settings(self) -> dict[str, Any]:
        """What round 0's evaluation depends on: the model, the task, the splits, limits and decoding."""
        import hashlib

        examples = {s: hashlib.sha256("\n".join(e.id + "\t" + e.question for e in self.examples(
            s, self.cfg.eval_limit)).encode()).hexdigest()[:16] for s in self.eval_split_names()}
        weights = self.base / "model.safetensors"
        return {"model": str(self.base), "model_mtime": weights.stat().st_mtime if weights.exists() else None,
                "task": self.task.describe(),
                "examples": examples, "max_tokens": self.cfg.max_tokens, "seed": self.cfg.seed,
                "device": self.cfg.device,
                **({"backend_options": self.backend_options} if self.backend_options else {})}

    def reuse_start_eval(self) -> bool:
        """Copy round 0's evaluation from ``reuse_start`` when it evaluated exactly what this run would."""
        other = self.reuse_start
        if other is None or not other.done(0, "eval"):
            return False
        m = other.read_json("round-0/metrics.json")
        if m.get("start") != self.start_settings():
            self.log(f"not reusing round 0 of {other.path}: its model, task or evaluation settings differ")
            return False
        for split in m["eval"]:
            name = f"round-0/eval-{split}.jsonl"
            self.rd.write_jsonl(name, other.read_jsonl(name))
        self.rd.write_json("round-0/metrics.json", {**m, "reused_from": str(other.path)})
        self.rd.write_jsonl("metrics.jsonl", round_metrics(self.rd.path))
        self.rd.mark(0, "eval")
        self.resync_eval(0)
        self.log(f"round 0 (start): {headline(m)} (evaluation reused from {other.path})")
        return True

    def resync_eval(self, r: int) -> dict[str, Any]:
        """A finished round's metrics, with its eval traces and metrics mirrored into the store
        (idempotent)."""
        m = self.rd.read_json(f"round-{r}/metrics.json")
        if self.store is not None and self.run_id is not None:
            for split in m["eval"]:
                traces = [Trace.from_dict(d) for d in self.rd.read_jsonl(f"round-{r}/eval-{split}.jsonl")]
                sync_store(self.store, self.run_id, f"{self.scope}round-{r}/eval/{split}", traces)
            sync_store(self.store, self.run_id, f"{self.scope}round-{r}", metrics=flat(m))
        return m


def round_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The finished rounds' metrics, in order (round 0 first)."""
    rd, out, r = RunDir(run_dir), [], 0
    while rd.exists(f"round-{r}/metrics.json"):
        out.append(rd.read_json(f"round-{r}/metrics.json"))
        r += 1
    return out


def headline(m: dict[str, Any]) -> str:
    """One line of a round's accuracy per split."""
    parts = []
    for split, a in m["eval"].items():
        acc = a["accuracy"]
        parts.append(f"{split} {acc:.3f} (n={a['n']}, unparsed {a['unparsed']})" if acc is not None
                     else f"{split} n/a")
    return "; ".join(parts)


def flat(m: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A round's metrics with the nested eval/data/train/generate records flattened
    (``eval.dev.accuracy``)."""
    out: dict[str, Any] = {}
    for k, v in m.items():
        if isinstance(v, dict) and k in ("eval", "data", "train", "generate"):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
