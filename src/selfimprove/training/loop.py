"""The self-training rounds loop: generate -> verify/vote -> keep -> SFT (TRL) -> evaluate, resumable.

Implements the round structure shared by STaR (Zelikman et al. 2022), ReST^EM (Singh et al. 2023, #104),
LMSI (Huang et al. 2022, #53) and easy-to-hard self-improvement (Lee et al. 2025, #331); the per-method
generation and selection rules are in ``methods.py``, the data builders in ``data.py``, the SFT call in
``sft.py``. Round 0 evaluates the starting model. Each round r >= 1:

1. **generate** with round r-1's model (k samples, or greedy for the no-filter control), scored for reporting;
2. **select** the rows the method keeps (+ replay for easy-to-hard, which then moves its difficulty frontier);
3. **train** with TRL's SFTTrainer — from round r-1's weights, or from the base model for ReST^EM — and save
   ``round-<r>/`` as a loadable HF model dir;
4. **eval**: greedy accuracy (with unparseable count and bootstrap CI) on the dev split and harder splits.

Stops early when dev accuracy has not beaten the best so far for ``patience`` rounds, or when easy-to-hard
runs out of difficulty splits. Every phase's output is written atomically with a marker (``rundir.py``), so
``resume`` continues after a crash without losing or repeating a round's data.

Not covered: DPO / preference rounds, multi-GPU launch, generation through a server during training (pass
``make_backend`` to use another backend for generation and evaluation).
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..metrics.accuracy import accuracy
from ..records import Example, Trace
from ..strategies.base import score_traces
from ..strategies.sample import Greedy
from . import methods
from .config import LoopConfig
from .data import PseudoLabel, SFTRow, check_generation_errors, row_stats
from .rundir import RunDir, sync_store
from .sft import SFTResult, save_policy, settings_from, train_sft


def run_loop(cfg: LoopConfig, task, model_path: str | Path, run_dir: str | Path, *, store=None,
             run_id: str | None = None, make_backend: Callable[[str], Any] | None = None,
             log: Callable[[str], None] | None = None, reuse_start: str | Path | None = None,
             scope: str = "") -> dict[str, Any]:
    """Run (or resume) ``cfg.rounds`` rounds of ``cfg.method`` starting from ``model_path``; returns the
    summary (also written to ``run_dir/summary.json``). Call again with the same ``run_dir`` to resume.

    ``reuse_start``: the run dir of another run whose round 0 evaluated the same starting model on the same
    splits, limits and task; its round-0 evaluation is copied instead of recomputed (the demo's arms share
    one). A run whose round-0 settings differ is not reused (and the log says why).

    ``scope``: a prefix for every store scope of this run (``"<scope>/round-1/generate"``), so that several
    loops can share one ``run_id`` (the demo's arms do) without mixing their traces."""
    loop = _Loop(cfg, task, Path(model_path), RunDir(run_dir), store, run_id, make_backend,
                 log or (lambda msg: print(msg, file=sys.stderr, flush=True)))
    loop.reuse_start = RunDir(reuse_start) if reuse_start is not None else None
    loop.scope = f"{scope.rstrip('/')}/" if scope else ""
    return loop.run()


def round_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The finished rounds' metrics, in order (round 0 first)."""
    rd, out, r = RunDir(run_dir), [], 0
    while rd.exists(f"round-{r}/metrics.json"):
        out.append(rd.read_json(f"round-{r}/metrics.json"))
        r += 1
    return out


def eval_traces(run_dir: str | Path, r: int, split: str) -> list[Trace]:
    """Round r's greedy evaluation traces on ``split`` (same examples, same order every round: pair them)."""
    return [Trace.from_dict(d) for d in RunDir(run_dir).read_jsonl(f"round-{r}/eval-{split}.jsonl")]


class _Loop:
    round_files = ("generate", "data", "train")
    """The round-<r>/<name>.json files a round's metrics.json includes (a subclass may add its own)."""

    def __init__(self, cfg, task, base: Path, rd: RunDir, store, run_id, make_backend, log) -> None:
        self.cfg, self.task, self.base, self.rd = cfg, task, base, rd
        self.store, self.run_id, self.log = store, run_id, log
        self.custom_backend = make_backend is not None  # then every generation goes through it
        self.make_backend = make_backend or self._hf_backend
        self.memory: tuple[int, Any, Any] | None = None  # (round, model, tokenizer) of the last policy used
        self.reuse_start: RunDir | None = None
        self.scope = ""  # prefix of the store scopes

    # ---- the rounds ----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        if stale := self.rd.clean():
            self.log(f"resuming: removed {len(stale)} partial file(s) a killed run left behind")
        if not self.rd.done(0, "eval"):
            if not self._reuse_start():
                self._evaluate(0)
        else:
            self._resync_eval(0)
        stop_reason = None
        for r in range(1, self.cfg.rounds + 1):
            stop_reason = self._stop_reason(r)
            if stop_reason:
                self.log(f"stopping before round {r}: {stop_reason}")
                break
            t0 = time.perf_counter()
            traces, examples = self._phase_generate(r)
            rows = self._phase_select(r, traces, examples)
            self._phase_train(r, rows)
            m = self._evaluate(r) if not self.rd.done(r, "eval") else self._resync_eval(r)
            self.log(f"round {r} done in {time.perf_counter() - t0:.1f}s: {_headline(m, self.cfg.dev_split)}")
        return self._summary(stop_reason)

    def _phase_generate(self, r: int) -> tuple[list[Trace], list[Example]]:
        if self.rd.done(r, "generate"):  # the examples the traces were generated on, as recorded
            recorded = self.rd.read_json(f"round-{r}/generate.json")["split"]
            examples = self._round_examples(r, split=recorded)[0]
            traces = [Trace.from_dict(d) for d in self.rd.read_jsonl(f"round-{r}/traces.jsonl")]
            # a kill between the marker and the store mirror would leave the store short: top it up
            sync_store(self.store, self.run_id, f"{self.scope}round-{r}/generate", traces)
            return traces, examples
        examples, split = self._round_examples(r)
        t0 = time.perf_counter()
        backend = self._backend(r - 1)
        self.log(f"round {r}: generating on {len(examples)} examples of '{split}' ({self.cfg.method})")
        traces = self._generate(backend, examples, r)
        check_generation_errors(traces, r)  # a round that lost too many requests builds nothing (resumable)
        self.rd.write_jsonl(f"round-{r}/traces.jsonl", (t.to_dict() for t in traces))
        self.rd.write_json(f"round-{r}/generate.json", {"split": split, "examples": len(examples),
                                                         "seconds": round(time.perf_counter() - t0, 3)})
        self.rd.mark(r, "generate")
        sync_store(self.store, self.run_id, f"{self.scope}round-{r}/generate", traces)
        return traces, examples

    def _generate(self, backend, examples: list[Example], r: int) -> list[Trace]:
        """Round r's generation (a hook: the preference rounds of ``pref_loop.py`` judge their samples here)."""
        return methods.generate(self.cfg.method, backend, self.task, examples, self.cfg, r)

    def _phase_select(self, r: int, traces: list[Trace], examples: list[Example]) -> list[SFTRow]:
        if self.rd.done(r, "select"):
            return [SFTRow.from_dict(d) for d in self.rd.read_jsonl(f"round-{r}/rows.jsonl")]
        t0 = time.perf_counter()
        rows, labels = methods.select(self.cfg.method, self.task, traces, self.cfg, r, examples)
        new = len(rows)
        if self.cfg.method == "easy-to-hard":
            rows = rows + self._replay(r, new)
        stats = row_stats(traces, rows)
        stats.update(methods.round_report(self.cfg.method, self.task, examples, traces, labels))
        gen_split = self.rd.read_json(f"round-{r}/generate.json")["split"]
        if self.cfg.method == "easy-to-hard":
            stats["pool_disjoint"] = gen_split not in self._eval_splits()
        stats.update({"new_rows": new, "split": gen_split,
                      "moved_frontier": self.cfg.method == "easy-to-hard" and new > 0,
                      "seconds": round(time.perf_counter() - t0, 3)})
        self.rd.write_jsonl(f"round-{r}/rows.jsonl", (x.to_dict() for x in rows))
        self.rd.write_jsonl(f"round-{r}/labels.jsonl", (x.to_dict() for x in labels))
        self.rd.write_json(f"round-{r}/data.json", stats)
        self.rd.mark(r, "select")
        self.log(f"round {r}: kept {len(rows)} rows ({new} new) from {len(traces)} examples")
        return rows

    def _phase_train(self, r: int, rows: list[SFTRow]) -> None:
        if self.rd.done(r, "train"):
            return
        t0 = time.perf_counter()
        start_round = 0 if self.cfg.method in methods.RESTARTS_FROM_BASE else r - 1
        model, tok = self._policy(start_round)
        stage = self.rd.stage_dir(r)
        if rows:
            self.log(f"round {r}: SFT on {len(rows)} rows from round {start_round}'s model")
            seed = self.cfg.seed * 1000 + r
            model, result = train_sft(model, tok, [x.trl() for x in rows], settings_from(self.cfg, seed=seed),
                                      save_to=stage)
        else:
            self.log(f"round {r}: no rows kept; round {r} keeps round {start_round}'s weights")
            save_policy(model, tok, stage)
            result = SFTResult(rows=0, steps=0)
        self.rd.install_model(stage, r)
        info = {**result.to_dict(), "first_loss": result.first_loss, "last_loss": result.last_loss,
                "start_round": start_round, "phase_seconds": round(time.perf_counter() - t0, 3)}
        self.rd.write_json(f"round-{r}/train.json", info)
        self.memory = (r, model, tok)
        self.rd.mark(r, "train")

    def _evaluate(self, r: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        backend = self._backend(r)
        results = {}
        for split in self._eval_splits():
            examples = self._examples(split, self.cfg.eval_limit)
            traces = score_traces(self.task, examples, Greedy(max_tokens=self.cfg.max_tokens).run(
                backend, self.task, examples))
            check_generation_errors(traces, r)  # an evaluation that lost requests is retried on resume
            self.rd.write_jsonl(f"round-{r}/eval-{split}.jsonl", (t.to_dict() for t in traces))
            results[split] = accuracy(traces, seed=self.cfg.seed)
            sync_store(self.store, self.run_id, f"{self.scope}round-{r}/eval/{split}", traces)
        m: dict[str, Any] = {"round": r, "eval": results, "eval_seconds": round(time.perf_counter() - t0, 3)}
        if r == 0:
            m["start"] = self._start_settings()
        for name in self.round_files:
            if self.rd.exists(f"round-{r}/{name}.json"):
                m[name] = self.rd.read_json(f"round-{r}/{name}.json")
        if r > 0:  # wall time per phase (of the process that ran it, on resume)
            m["seconds"] = {"generate": m["generate"]["seconds"], "select": m["data"]["seconds"],
                            "train": m["train"]["phase_seconds"], "eval": m["eval_seconds"]}
        self.rd.write_json(f"round-{r}/metrics.json", m)
        self.rd.write_jsonl("metrics.jsonl", round_metrics(self.rd.path))
        self.rd.mark(r, "eval")
        sync_store(self.store, self.run_id, f"{self.scope}round-{r}", metrics=_flat(m))
        if r == 0:
            self.log(f"round 0 (start): {_headline(m, self.cfg.dev_split)}")
        return m

    def _start_settings(self) -> dict[str, Any]:
        """What round 0's evaluation depends on: the model, the task, the splits, limits and decoding."""
        import hashlib

        examples = {s: hashlib.sha256("\n".join(e.id + "\t" + e.question for e in self._examples(
            s, self.cfg.eval_limit)).encode()).hexdigest()[:16] for s in self._eval_splits()}
        weights = self.base / "model.safetensors"
        return {"model": str(self.base), "model_mtime": weights.stat().st_mtime if weights.exists() else None,
                "task": self.task.describe(),
                "examples": examples, "max_tokens": self.cfg.max_tokens, "seed": self.cfg.seed,
                "device": self.cfg.device}

    def _reuse_start(self) -> bool:
        """Copy round 0's evaluation from ``reuse_start`` when it evaluated exactly what this run would."""
        other = self.reuse_start
        if other is None or not other.done(0, "eval"):
            return False
        m = other.read_json("round-0/metrics.json")
        if m.get("start") != self._start_settings():
            self.log(f"not reusing round 0 of {other.path}: its model, task or evaluation settings differ")
            return False
        for split in m["eval"]:
            self.rd.write_jsonl(f"round-0/eval-{split}.jsonl", other.read_jsonl(f"round-0/eval-{split}.jsonl"))
        self.rd.write_json("round-0/metrics.json", {**m, "reused_from": str(other.path)})
        self.rd.write_jsonl("metrics.jsonl", round_metrics(self.rd.path))
        self.rd.mark(0, "eval")
        self._resync_eval(0)
        self.log(f"round 0 (start): {_headline(m, self.cfg.dev_split)} (evaluation reused from {other.path})")
        return True

    def _resync_eval(self, r: int) -> dict[str, Any]:
        """A finished round's metrics, with its eval traces and metrics mirrored into the store (idempotent)."""
        m = self.rd.read_json(f"round-{r}/metrics.json")
        if self.store is not None and self.run_id is not None:
            for split in m["eval"]:
                traces = [Trace.from_dict(d) for d in self.rd.read_jsonl(f"round-{r}/eval-{split}.jsonl")]
                sync_store(self.store, self.run_id, f"{self.scope}round-{r}/eval/{split}", traces)
            sync_store(self.store, self.run_id, f"{self.scope}round-{r}", metrics=_flat(m))
        return m

    # ---- helpers -------------------------------------------------------------------------------------
    def _round_examples(self, r: int, split: str | None = None) -> tuple[list[Example], str]:
        cfg = self.cfg
        if cfg.method == "easy-to-hard":
            split = split or self._pool_split(cfg.difficulty_splits[self._frontier(r)])
            return self._examples(split, cfg.train_limit), split
        pool = self.task.examples(cfg.train_split)
        if cfg.train_limit is None or cfg.train_limit >= len(pool) or not pool:
            return list(pool), cfg.train_split
        start = ((r - 1) * cfg.train_limit) % len(pool) if cfg.rotate else 0
        picked = [pool[(start + i) % len(pool)] for i in range(cfg.train_limit)]
        return picked, cfg.train_split

    def _pool_split(self, split: str) -> str:
        """easy-to-hard pseudo-labels ``task.pool_split(split)`` — a training pool at that difficulty, disjoint
        from every evaluated split — where the task has one; otherwise the evaluated split itself, which the log
        and ``data.json`` say (the round's accuracy on that split is then measured on problems it trained on,
        without their gold labels)."""
        name = self.task.pool_split(split)
        if name is not None:
            if not self.task.examples(name):
                raise ValueError(f"easy-to-hard: the training pool {name!r} of split {split!r} is empty")
            return name
        self.log(f"easy-to-hard: the task has no training pool for '{split}'; pseudo-labelling the evaluated "
                 f"split itself")
        return split

    def _frontier(self, r: int) -> int:
        """easy-to-hard: index into difficulty_splits of round r's target (moves after rounds that kept rows)."""
        return sum(bool(self.rd.read_json(f"round-{j}/data.json").get("moved_frontier"))
                   for j in range(1, r))

    def _replay(self, r: int, new: int) -> list[SFTRow]:
        pool: list[SFTRow] = []
        if self.cfg.replay_gold:
            for e in self._examples(self.cfg.train_split, self.cfg.train_limit):
                if (gold := self.task.solution(e)) is not None:
                    pool.append(SFTRow(self.task.prompt(e), gold + methods.target_suffix(self.task, self.cfg),
                                       e.id, "replay-gold", e.answer, 0))
        for j in range(1, r):
            pool += [SFTRow.from_dict(d) for d in self.rd.read_jsonl(f"round-{j}/rows.jsonl")
                     if d["source"] == "pseudo"]
        want = min(len(pool), math.ceil(self.cfg.replay * new))
        picked = random.Random(self.cfg.seed * 1000 + r).sample(pool, want) if new else []
        return [SFTRow(x.prompt, x.completion, x.example_id, "replay" if x.source == "pseudo" else x.source,
                       x.answer, x.round_idx) for x in picked]

    def _examples(self, split: str, limit: int | None) -> list[Example]:
        examples = self.task.examples(split)
        return list(examples if limit is None else examples[:limit])

    def _eval_splits(self) -> list[str]:
        splits = [self.cfg.dev_split, *self.cfg.eval_splits]
        if self.cfg.method == "easy-to-hard":
            splits += list(self.cfg.difficulty_splits)
        return list(dict.fromkeys(splits))

    def _stop_reason(self, r: int) -> str | None:
        cfg = self.cfg
        if cfg.method == "easy-to-hard" and self._frontier(r) >= len(cfg.difficulty_splits):
            return "easy-to-hard ran out of difficulty splits"
        if cfg.patience is None:
            return None
        accs = [m["eval"][cfg.dev_split]["accuracy"] or 0.0 for m in round_metrics(self.rd.path)[:r]]
        best = 0
        for i, acc in enumerate(accs):
            if acc > accs[best] + cfg.min_delta:
                best = i
        if (r - 1) - best >= cfg.patience:
            return (f"dev accuracy has not improved on round {best}'s {accs[best]:.3f} "
                    f"for {cfg.patience} round(s)")
        return None

    def _policy(self, r: int):
        """(model, tokenizer) of round r, from memory when it is the last one used, else loaded from disk.
        Training updates the returned model in place; round r's weights stay safe on disk."""
        if self.memory is not None and self.memory[0] == r:
            return self.memory[1], self.memory[2]
        if self.custom_backend:  # the generation backend may hold no weights: load them for training
            from .sft import load_policy

            return load_policy(self._path(r))
        backend = self.make_backend(str(self._path(r)))
        return backend.model, backend.tokenizer

    def _backend(self, r: int):
        if self.memory is not None and self.memory[0] == r and not self.custom_backend:
            from ..backends.hf import HFBackend

            return HFBackend.from_model(self.memory[1], self.memory[2], name=str(self._path(r)))
        backend = self.make_backend(str(self._path(r)))
        if not self.custom_backend:
            self.memory = (r, backend.model, backend.tokenizer)
        return backend

    def _path(self, r: int) -> Path:
        return self.base if r == 0 else self.rd.round_dir(r)

    def _hf_backend(self, path: str):
        from ..backends.hf import HFBackend

        device = self.cfg.device
        if device == "auto":
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        return HFBackend(path, device=device)

    def _summary(self, stop_reason: str | None) -> dict[str, Any]:
        ms = round_metrics(self.rd.path)
        dev = [m["eval"][self.cfg.dev_split]["accuracy"] for m in ms]
        best = max(range(len(dev)), key=lambda i: (dev[i] or 0.0, -i))
        summary = {"method": self.cfg.method, "rounds_done": len(ms) - 1, "stopped": stop_reason,
                   "dev_accuracy": dev, "best_round": best, "best_model": str(self._path(best)),
                   "final_model": str(self._path(len(ms) - 1)), "run_dir": str(self.rd.path)}
        self.rd.write_json("summary.json", summary)
        return summary


def _headline(m: dict[str, Any], dev: str) -> str:
    parts = []
    for split, a in m["eval"].items():
        acc = a["accuracy"]
        parts.append(f"{split} {acc:.3f} (n={a['n']}, unparsed {a['unparsed']})" if acc is not None
                     else f"{split} n/a")
    return "; ".join(parts)


def _flat(m: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in m.items():
        if isinstance(v, dict) and k in ("eval", "data", "train", "generate"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


__all__ = ["LoopConfig", "PseudoLabel", "round_metrics", "run_loop"]
