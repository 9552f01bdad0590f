"""The one round loop: generate -> verify/label -> build -> train -> evaluate -> guards, for any ``Method``.

Round 0 evaluates the starting model. Each round r >= 1 runs four phases, each written atomically with a
marker (``rundir.py``), so that ``run_loop`` called again on the same run directory resumes after a crash
(kill -9 at any instant) without losing or repeating a round's data:

1. **generate** — ``method.round_examples`` then ``method.collect`` with round r-1's model: scored traces
   (``round-<r>/traces.jsonl``, ``generate.json``);
2. **select** — ``method.build``: SFT rows, preference pairs and pseudo-labels (``rows.jsonl``,
   ``pairs.jsonl``, ``labels.jsonl``) and their report (``data.json``);
3. **train** — TRL SFT on the rows or DPO on the pairs (``method.objective``), from round r-1's weights or,
   for ``method.restarts_from_base``, from the base model; then ``method.after_train``; ``round-<r>/`` is
   saved as a loadable HF model dir and ``train.json`` says what training did;
4. **eval** — greedy accuracy (unparseable count, bootstrap CI) on the dev split, ``eval_splits`` and the
   method's own splits; for guarded methods also the guard probe (``guards.json``) and the method's
   measurements with the log-probability of the gold solutions (``extra.json``).

Stops early when dev accuracy has not beaten the best so far for ``patience`` rounds, when a guarded method's
dev accuracy fell two rounds in a row (``guards.collapse_stop``), or when the method says so
(``method.stop_reason``). The summary of a guarded run adds paired tests of every round against round 0 and
the previous round. Generation and evaluation go through the hf backend of each round's model unless
``make_backend`` is given (a server, or a scripted double in tests).

Not covered: multi-GPU launch (run under ``accelerate launch``), online (within-round) updates.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..files import weights_sha256
from ..metrics.accuracy import accuracy
from ..records import Example, Trace
from ..store.runs import CachedBackend, MemoryCache
from ..strategies.base import score_traces
from ..strategies.sample import Greedy
from . import guards
from .config import LoopConfig
from .data import PseudoLabel, SFTRow, check_generation_errors
from .method import Built, Method, seed_of
from .preferences import PreferencePair, references
from .rundir import RunDir, sync_store
from .sft import SFTResult, save_policy
from .state import RunState, flat, headline, round_metrics


def run_loop(cfg: LoopConfig, task, model_path: str | Path, run_dir: str | Path, *, store=None,
             run_id: str | None = None, make_backend: Callable[[str], Any] | None = None,
             log: Callable[[str], None] | None = None, reuse_start: str | Path | None = None,
             scope: str = "", backend_options: dict[str, Any] | None = None,
             start_greedy: dict[str, list[Trace]] | None = None,
             shared_samples: MemoryCache | None = None) -> dict[str, Any]:
    """Run (or resume) ``cfg.rounds`` rounds of ``cfg.method`` starting from ``model_path``; returns the
    summary (also written to ``run_dir/summary.json``). Call again with the same ``run_dir`` to resume.

    ``reuse_start``: the run dir of another run whose round 0 evaluated the same starting model on the same
    splits, limits and task; its round-0 evaluation is copied instead of recomputed (the demo's arms share
    one). ``scope``: a prefix for every store scope of this run, so that several loops can share one
    ``run_id`` without mixing their traces. ``backend_options``: the hf backend's options of the model spec
    (``smollm2:chat=false`` → ``{"chat": False}``) for every round's model; ``chat`` also decides how the
    trainers format their rows, so a model is trained on the text it is prompted with.
    ``start_greedy``: greedy traces (``max_tokens`` as ``cfg``) of the starting model, per split, already
    computed (the demo's inference table on dev); round 0's evaluation of a split uses them instead of
    decoding again when they cover exactly that split's evaluated examples, in order. ``shared_samples``: a
    ``MemoryCache`` that round 1's generation goes through: runs from the same starting model with the same
    prompts, sampling parameters and seed (the demo's arms) draw those samples once. Keys hold the model's
    fingerprint, so a run from another model never reads them."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    loop = RoundLoop(cfg, task, Path(model_path), RunDir(run_dir), store=store, run_id=run_id,
                     make_backend=make_backend, log=log, scope=scope, backend_options=backend_options,
                     reuse_start=RunDir(reuse_start) if reuse_start is not None else None,
                     shared_samples=shared_samples)
    loop.start_greedy = dict(start_greedy or {})
    return loop.run()


def eval_traces(run_dir: str | Path, r: int, split: str) -> list[Trace]:
    """Round r's greedy evaluation traces on ``split`` (same examples, same order every round: pair them)."""
    return [Trace.from_dict(d) for d in RunDir(run_dir).read_jsonl(f"round-{r}/eval-{split}.jsonl")]


class RoundLoop(RunState):
    """The rounds of one run. Methods read ``cfg``, ``task``, ``rd``, ``base``, ``log``, ``make_backend`` and
    call ``train_slice``, ``examples``, ``path``, ``eval_split_names`` and ``trainer_settings``."""

    def run(self) -> dict[str, Any]:
        if stale := self.rd.clean():
            self.log(f"resuming: removed {len(stale)} partial file(s) a killed run left behind")
        if not self.rd.done(0, "eval"):
            if not self.reuse_start_eval():
                self.evaluate(0)
        else:
            self.resync_eval(0)
        stop_reason = None
        for r in range(1, self.cfg.rounds + 1):
            stop_reason = self.stop_reason(r)
            if stop_reason:
                self.log(f"stopping before round {r}: {stop_reason}")
                break
            t0 = time.perf_counter()
            traces, examples = self.phase_generate(r)
            built = self.phase_select(r, traces, examples)
            self.phase_train(r, built)
            m = self.evaluate(r) if not self.rd.done(r, "eval") else self.resync_eval(r)
            self.log(f"round {r} done in {time.perf_counter() - t0:.1f}s: {headline(m)}")
        return self.summary(stop_reason)

    # ---- the phases ----------------------------------------------------------------------------------------
    def phase_generate(self, r: int) -> tuple[list[Trace], list[Example]]:
        if self.rd.done(r, "generate"):  # the examples the traces were generated on, as recorded
            examples = self.examples_of(r)
            traces = [Trace.from_dict(d) for d in self.rd.read_jsonl(f"round-{r}/traces.jsonl")]
            # a kill between the marker and the store mirror would leave the store short: top it up
            sync_store(self.store, self.run_id, f"{self.scope}round-{r}/generate", traces)
            return traces, examples
        examples, split = self.method.round_examples(self, r)
        t0, c0 = time.perf_counter(), time.process_time()
        backend = self.backend(r - 1)
        if r == 1 and self.shared_samples is not None:  # the starting model's samples, drawn once per process
            backend = CachedBackend(backend, self.shared_samples)
        self.log(f"round {r}: generating on {len(examples)} examples of '{split}' ({self.method.name})")
        traces = self.method.collect(self, r, backend, examples)
        check_generation_errors(traces, r)  # a round that lost too many requests builds nothing (resumable)
        if isinstance(backend, CachedBackend) and backend.hits:
            self.log(f"round {r}: the samples of {backend.hits} of {backend.hits + backend.misses} prompts "
                     "were drawn by an earlier run from the same model (same prompts, parameters, seed)")
        self.rd.write_jsonl(f"round-{r}/traces.jsonl", (t.to_dict() for t in traces))
        self.rd.write_json(f"round-{r}/generate.json", {"split": split, "examples": len(examples),
                                                         "seconds": round(time.perf_counter() - t0, 3),
                                                         "cpu_seconds": round(time.process_time() - c0, 3),
                                                         **({"shared_prompts": backend.hits}
                                                            if isinstance(backend, CachedBackend) else {})})
        self.rd.mark(r, "generate")
        sync_store(self.store, self.run_id, f"{self.scope}round-{r}/generate", traces)
        return traces, examples

    def examples_of(self, r: int) -> list[Example]:
        """The examples round r's recorded traces were generated on (by the split ``generate.json`` names)."""
        split = self.rd.read_json(f"round-{r}/generate.json")["split"]
        if split == self.cfg.train_split:
            return self.train_slice(r)[0]
        return self.examples(split, self.cfg.train_limit)

    def phase_select(self, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        if self.rd.done(r, "select"):
            def read(name: str, record) -> list:
                return [record.from_dict(d) for d in self.rd.read_jsonl(f"round-{r}/{name}.jsonl")]

            return Built(rows=read("rows", SFTRow), pairs=read("pairs", PreferencePair),
                         labels=read("labels", PseudoLabel))
        t0, c0 = time.perf_counter(), time.process_time()
        built = self.method.build(self, r, traces, examples)
        built.stats.update(split=self.rd.read_json(f"round-{r}/generate.json")["split"],
                           seconds=round(time.perf_counter() - t0, 3),
                           cpu_seconds=round(time.process_time() - c0, 3))
        for name, items in (("rows", built.rows), ("pairs", built.pairs), ("labels", built.labels)):
            self.rd.write_jsonl(f"round-{r}/{name}.jsonl", (x.to_dict() for x in items))
        self.rd.write_json(f"round-{r}/data.json", built.stats)
        self.rd.mark(r, "select")
        what = f"{len(built.pairs)} pairs" if self.method.objective == "dpo" else f"{len(built.rows)} rows"
        self.log(f"round {r}: built {what} from {len(traces)} examples")
        return built

    def phase_train(self, r: int, built: Built) -> None:
        if self.rd.done(r, "train"):
            return
        from .dpo import train_dpo
        from .sft import train_sft

        t0, c0, method = time.perf_counter(), time.process_time(), self.method
        start = 0 if method.restarts_from_base else r - 1
        model, tok = self.policy(start)
        stage, seed = self.rd.stage_dir(r), seed_of(self.cfg, r)
        info: dict[str, Any] = {"start_round": start, "objective": method.objective}
        if method.objective == "sft" and built.rows:
            self.log(f"round {r}: SFT on {len(built.rows)} rows from round {start}'s model")
            model, res = train_sft(model, tok, [x.trl() for x in built.rows],
                                   self.trainer_settings("sft", seed), save_to=stage, chat=self.chat)
            info.update(res.to_dict(), first_loss=res.first_loss, last_loss=res.last_loss)
        elif method.objective == "dpo" and built.pairs:
            self.log(f"round {r}: DPO ({'+'.join(self.cfg.dpo.loss_type)}) on {len(built.pairs)} pairs from "
                     f"round {start}'s model")
            model, res = train_dpo(model, tok, [p.trl() for p in built.pairs],
                                   self.trainer_settings("dpo", seed), save_to=stage, chat=self.chat)
            info.update(res.summary())
        elif method.objective == "grpo":
            examples = self.examples_of(r)
            self.log(f"round {r}: {method.name} ({getattr(method, 'reward', '')}) on {len(examples)} prompts "
                     f"from round {start}'s model")
            model, out = method.train(self, r, model, tok, examples, seed, save_to=stage)
            info.update(out)
        else:
            self.log(f"round {r}: nothing to train on; round {r} keeps round {start}'s weights")
            save_policy(model, tok, stage)
            info.update(SFTResult(rows=0, steps=0).to_dict())
        info["weights_sha256"] = weights_sha256(self.rd.install_model(stage, r))  # which checkpoint
        info.update(method.after_train(self, r, seed) or {})
        info["phase_seconds"] = round(time.perf_counter() - t0, 3)
        info["phase_cpu_seconds"] = round(time.process_time() - c0, 3)
        self.rd.write_json(f"round-{r}/train.json", info)
        self.memory = (r, model, tok)
        self.rd.mark(r, "train")

    def evaluate(self, r: int) -> dict[str, Any]:
        """Round r's greedy accuracy on every evaluated split (+ guards and extras for guarded methods)."""
        t0, c0 = time.perf_counter(), time.process_time()
        files = ["generate", "data", "train"]
        if self.method.guarded:
            self.rd.write_json(f"round-{r}/extra.json", self.extras(r))
            self.rd.write_json(f"round-{r}/guards.json", self.guard_probe(r))
            t0, c0 = time.perf_counter(), time.process_time()
        elif type(self.method).evaluate is not Method.evaluate:  # e.g. SCoRe's correction transitions
            dev = self.examples(self.cfg.dev_split, self.cfg.eval_limit)
            self.rd.write_json(f"round-{r}/extra.json", self.method.evaluate(self, r, self.backend(r), dev))
        files += ["extra", "guards"]  # an RL method's training writes its round's guards.json
        backend, results = self.backend(r), {}
        for split in self.eval_split_names():
            examples = self.examples(split, self.cfg.eval_limit)
            given = self.start_greedy.get(split) if r == 0 else None
            if given is not None and [t.example_id for t in given] == [e.id for e in examples]:
                traces = list(given)  # the starting model's greedy answers, decoded once (the demo)
            else:
                traces = score_traces(self.task, examples, Greedy(max_tokens=self.cfg.max_tokens).run(
                    backend, self.task, examples))
            check_generation_errors(traces, r)  # an evaluation that lost requests is retried on resume
            self.rd.write_jsonl(f"round-{r}/eval-{split}.jsonl", (t.to_dict() for t in traces))
            results[split] = accuracy(traces, seed=self.cfg.seed)
            sync_store(self.store, self.run_id, f"{self.scope}round-{r}/eval/{split}", traces)
        m: dict[str, Any] = {"round": r, "eval": results, "eval_seconds": round(time.perf_counter() - t0, 3),
                             "eval_cpu_seconds": round(time.process_time() - c0, 3)}
        if r == 0:
            m["start"] = self.start_settings()
        for name in files:
            if self.rd.exists(f"round-{r}/{name}.json"):
                m[name] = self.rd.read_json(f"round-{r}/{name}.json")
        if r > 0:  # wall and CPU time (all threads) per phase, of the process that ran it, on resume
            m["seconds"] = {"generate": m["generate"]["seconds"], "select": m["data"]["seconds"],
                            "train": m["train"]["phase_seconds"], "eval": m["eval_seconds"]}
            m["cpu_seconds"] = {"generate": m["generate"].get("cpu_seconds"),
                                "select": m["data"].get("cpu_seconds"),
                                "train": m["train"].get("phase_cpu_seconds"), "eval": m["eval_cpu_seconds"]}
        self.rd.write_json(f"round-{r}/metrics.json", m)
        self.rd.write_jsonl("metrics.jsonl", round_metrics(self.rd.path))
        self.rd.mark(r, "eval")
        sync_store(self.store, self.run_id, f"{self.scope}round-{r}", metrics=flat(m))
        if r == 0:
            self.log(f"round 0 (start): {headline(m)}")
        return m

    # ---- the guarded methods' measurements -----------------------------------------------------------------
    def guard_probe(self, r: int) -> dict[str, Any]:
        """The guard probe of round r's model on a dev slice (length drift against round 0's model)."""
        cfg = self.cfg
        base_len = None
        if r > 0 and self.rd.exists("round-0/guards.json"):
            base_len = self.rd.read_json("round-0/guards.json").get("length", {}).get("mean")
        probe = self.examples(cfg.dev_split, cfg.guards.limit) if cfg.guards.limit else []
        judge = cfg.guards.judge or self.method.guard_judge()
        return guards.probe(self.backend(r), self.task, probe, cfg, r, base_len, judge=judge, n=cfg.guards.n)

    def extras(self, r: int) -> dict[str, Any]:
        """Mean log π(gold solution) on the dev split, self-correction when asked, the method's own
        measurements."""
        cfg, task = self.cfg, self.task
        backend = self.backend(r)
        dev = self.examples(cfg.dev_split, cfg.eval_limit)
        refs = references(task, dev)
        out: dict[str, Any] = {}
        if refs and getattr(backend.capabilities, "loglikelihood", False):
            ids = [e for e in dev if e.id in refs]
            lls = backend.loglikelihood([task.prompt(e) for e in ids], [refs[e.id] for e in ids])
            out["gold_logp"] = {"mean": sum(lls) / len(lls), "n": len(lls)}
        own = self.method.evaluate(self, r, backend, dev)
        if cfg.guards.eval_correction and "correction" not in own:
            out["correction"] = guards.correction(task, backend, dev, cfg.max_tokens)
        return {**out, **own}

    # ---- stopping and summary ------------------------------------------------------------------------------
    def stop_reason(self, r: int) -> str | None:
        if reason := self.method.stop_reason(self, r):
            return reason
        cfg = self.cfg
        accs = [m["eval"][cfg.dev_split]["accuracy"] for m in round_metrics(self.rd.path)[:r]]
        if cfg.patience:
            best = 0
            for i, acc in enumerate(accs):
                if (acc or 0.0) > (accs[best] or 0.0) + cfg.min_delta:
                    best = i
            if (r - 1) - best >= cfg.patience:
                return (f"dev accuracy has not improved on round {best}'s {accs[best] or 0.0:.3f} "
                        f"for {cfg.patience} round(s)")
        if self.method.guarded and cfg.guards.collapse_stop and guards.collapsed(accs):
            shown = ", ".join(f"{a:.3f}" for a in accs[-3:])
            return f"collapse: dev accuracy fell two rounds in a row ({shown})"
        return None

    def summary(self, stop_reason: str | None) -> dict[str, Any]:
        ms = round_metrics(self.rd.path)
        dev = [m["eval"][self.cfg.dev_split]["accuracy"] for m in ms]
        best = max(range(len(dev)), key=lambda i: (dev[i] or 0.0, -i))
        summary = {"method": self.method.name, "rounds_done": len(ms) - 1, "stopped": stop_reason,
                   "dev_accuracy": dev, "best_round": best, "best_model": str(self.path(best)),
                   "final_model": str(self.path(len(ms) - 1)), "run_dir": str(self.rd.path)}
        if self.method.guarded:
            summary["paired"] = guards.paired_rounds(self.rd.path, self.cfg.dev_split)
            summary["paired_by_split"] = {split: guards.paired_rounds(self.rd.path, split)
                                          for split in self.eval_split_names()}
        self.rd.write_json("summary.json", summary)
        return summary


__all__ = ["LoopConfig", "RoundLoop", "eval_traces", "round_metrics", "run_loop"]
