"""Preference rounds: generate -> judge / vote -> pairs -> DPO (TRL) -> evaluate, on ``loop.py``'s rounds.

The same run directory, phases, resume marker, patience rule and evaluation as STaR's loop (``PrefLoop``
subclasses it and replaces generation, selection and training), for the methods of METHODS area F / E:

- ``self-rewarding`` (#76): k samples judged by the current model (``judge``: ptrue — the task's verify
  format — rubric, verbal, checklist, pairwise); highest vs lowest scored → DPO; ``meta_judge`` adds
  Meta-Rewarding's (#27) judge pairs (two sampled rubric judgements compared by the model, both orders).
- ``scpo`` (#25): k samples, most- vs least-voted answer → DPO weighted by the vote margin. No gold.
- ``spin`` (#334): the reference solution vs one own sample → DPO against the previous iterate.
- ``gold-dpo``: the gold-labelled control: one (correct, incorrect) sample pair per example → DPO.
- ``v-star`` (#108): STaR rounds (SFT on correct samples, rationalisation) plus a verifier trained by DPO from
  the base model on every round's (correct, incorrect) pairs; evaluated as best-of-n with the verifier
  beside majority vote over the same samples.
- ``cct`` (#1, §3.1): SFT on confidence and critique correction rows; evaluated by CL, CS and RSS.

Every round stores ``pairs.jsonl`` (with provenance) and in ``train.json`` the chosen/rejected
log-probabilities before and after DPO; every evaluation (round 0 and the final round included) adds
``guards.json`` (``guards.py``, the evaluated model probed on a dev slice: round r-1's guards describe the judge
and generator of round r's data) and ``extra.json``: mean log π(gold solution) on the dev split and the
method's own evaluation; both are part of the round's ``metrics.json``. The run stops early on patience or
when dev accuracy fell two rounds in a row (``collapse_stop``). The summary holds paired tests of every round
against round 0 and the previous round, on every evaluated split.

Not covered: CREAM / SCIR consistency regularisation, Self-Rewarding's EFT seed data, training the judge on
its own gold verdicts, online (on-policy within a round) DPO.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..records import Example, SamplingParams, Step, Trace, Verdict
from ..strategies.base import generate_step, score_traces, spent
from . import guards, methods
from .config import LoopConfig
from .data import SFTRow, correct_rows
from .dpo import DPOSettings, train_dpo
from .loop import _Loop, round_metrics
from .preferences import (
    META_JUDGE,
    SELF_JUDGE,
    PreferencePair,
    Provenance,
    cct_rows,
    correctness_pairs,
    meta_judge_pairs,
    pair_stats,
    references,
    scpo_pairs,
    self_rewarding_pairs,
    spin_pairs,
)
from .rundir import RunDir
from .sft import SFTResult, load_policy, save_policy, settings_from, train_sft

PREF_METHODS = ("self-rewarding", "scpo", "spin", "gold-dpo", "v-star", "cct")
"""Method names, as ``--method`` takes them."""
GENERATION = {"self-rewarding": "lmsi", "scpo": "lmsi", "spin": "lmsi", "gold-dpo": "rest-em", "v-star": "star",
              "cct": "rest-em"}
"""The ``methods.py`` generation each method reuses (k samples; voted, or verified against gold)."""
JUDGES = ("ptrue", "verbal", "rubric", "checklist", "pairwise")


@dataclass(frozen=True)
class PrefConfig(LoopConfig):
    """A preference run: every LoopConfig setting (sampling, data, SFT budget, eval, stopping) plus these."""

    method: str = "scpo"
    """self-rewarding | scpo | spin | gold-dpo | v-star | cct."""
    judge: str = "ptrue"
    """Self-judge (self-rewarding and the guards): ptrue, verbal, rubric, checklist or pairwise."""
    meta_judge: bool = False
    """self-rewarding: add Meta-Rewarding judge pairs (needs a judge that writes judgements: rubric)."""
    min_gap: float = 0.0
    """self-rewarding: a pair needs its scores to differ by more than this."""
    include_unparseable: bool = False
    """scpo: an unparseable sample may be the rejected response (0 votes)."""
    dpo_lr: float = 1e-5
    """DPO learning rate, for the tiny model chosen on dev (``DPOSettings.lr``); ``lr`` stays the SFT rate of
    v-star's generator and cct."""
    beta: float = 0.1
    """DPO β."""
    loss_type: tuple[str, ...] = ("sigmoid", "sft")
    """TRL loss types: ('sigmoid',) plain DPO; ('sigmoid', 'sft') DPO + NLL on the chosen response."""
    loss_weights: tuple[float, ...] | None = None
    """Weight per loss type (None: 1 each)."""
    verifier_score: str = "logratio"
    """v-star: verifier score, 'logratio' (log π_V − log π_ref) or 'likelihood' (log π_V)."""
    bon_n: int = 8
    """v-star: samples per dev example for best-of-n with the verifier."""
    cct_max_per_kind: int = 2
    """cct: confidence rows and critique rows per example, each at most this."""
    eval_correction: bool = False
    """Measure CL / CS / RSS of the self-correction step every round for every method (cct always does)."""
    guard_limit: int = 32
    """Dev examples the guards probe each round (0: no probe)."""
    guard_k: int = 4
    """Samples per probed dev example."""
    collapse_stop: bool = True
    """Stop when dev accuracy fell two rounds in a row."""

    def __post_init__(self) -> None:
        if self.method not in PREF_METHODS:
            raise ValueError(f"PrefConfig.method must be one of {', '.join(PREF_METHODS)}, got {self.method!r}")
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(LoopConfig)}
        checked = LoopConfig(**{**shared, "method": GENERATION[self.method]})  # LoopConfig's own validation
        for name in ("eval_splits", "difficulty_splits"):
            object.__setattr__(self, name, getattr(checked, name))
        object.__setattr__(self, "loss_type", tuple([self.loss_type] if isinstance(self.loss_type, str)
                                                    else self.loss_type))
        if self.loss_weights is not None:
            object.__setattr__(self, "loss_weights", tuple(self.loss_weights))
        self.dpo_settings()  # DPOSettings' validation
        if self.judge not in JUDGES:
            raise ValueError(f"PrefConfig.judge must be one of {', '.join(JUDGES)}, got {self.judge!r}")
        if self.meta_judge and self.judge != "rubric":
            raise ValueError("PrefConfig.meta_judge needs judge='rubric' (a judge that writes its judgements)")
        if self.verifier_score not in ("logratio", "likelihood") or min(self.bon_n, self.cct_max_per_kind,
                                                                        self.guard_k, self.guard_limit + 1) < 1:
            raise ValueError("PrefConfig: verifier_score must be logratio or likelihood; bon_n, cct_max_per_kind "
                             "and guard_k >= 1; guard_limit >= 0")

    def dpo_settings(self, seed: int | None = None) -> DPOSettings:
        return DPOSettings(lr=self.dpo_lr, beta=self.beta, loss_type=self.loss_type, loss_weights=self.loss_weights,
                           epochs=self.epochs, batch_size=self.batch_size, max_steps=self.max_steps,
                           max_length=self.max_length, scheduler=self.scheduler, lora=self.lora,
                           lora_r=self.lora_r, seed=self.seed if seed is None else seed)


PREF_FIELDS = ("judge", "meta_judge", "min_gap", "include_unparseable", "dpo_lr", "beta", "loss_type",
               "loss_weights", "verifier_score", "bon_n", "guard_limit", "guard_k", "eval_correction")
"""PrefConfig fields the ``train`` command takes as flags (``--dpo-lr`` for dpo_lr, ...)."""


def run_pref_loop(cfg: PrefConfig, task, model_path: str | Path, run_dir: str | Path, *, store=None,
                  run_id: str | None = None, make_backend: Callable[[str], Any] | None = None,
                  log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) ``cfg.rounds`` preference rounds from ``model_path``; returns the summary."""
    loop = PrefLoop(cfg, task, Path(model_path), RunDir(run_dir), store, run_id, make_backend,
                    log or (lambda msg: print(msg, file=sys.stderr, flush=True)))
    return loop.run()


class PrefLoop(_Loop):
    round_files = ("generate", "data", "train", "extra", "guards")

    # ---- generate: samples (+ self-judging) -------------------------------------------------------------
    def _generate(self, backend, examples: list[Example], r: int) -> list[Trace]:
        cfg, task = self.cfg, self.task
        gen_cfg = cfg.replace(k=1) if cfg.method == "spin" else cfg
        traces = methods.generate(GENERATION[cfg.method], backend, task, examples, gen_cfg, r)
        if cfg.method == "self-rewarding":
            traces = judge_samples(backend, task, examples, traces, cfg.judge)
            if cfg.meta_judge:
                traces = meta_judge(backend, task, examples, traces, cfg, seed=cfg.seed * 1000 + r + 700)
        return traces

    # ---- select: pairs (and SFT rows for v-star's generator and cct) ------------------------------------
    def _phase_select(self, r: int, traces: list[Trace], examples: list[Example]):
        if self.rd.done(r, "select"):
            return self._read_data(r)
        t0, cfg, task = time.perf_counter(), self.cfg, self.task
        prov = Provenance(r, model=str(self._path(r - 1)), seed=cfg.seed * 1000 + r)
        suffix, refs = methods.target_suffix(task, cfg), references(task, examples)
        pairs, rows, by_id = [], [], {e.id: e for e in examples}
        if cfg.method == "self-rewarding":
            pairs, stats = self_rewarding_pairs(traces, judge=cfg.judge, prov=prov, suffix=suffix,
                                                min_gap=cfg.min_gap)
            if cfg.meta_judge:
                meta, stats["meta"] = meta_judge_pairs(traces, prov=prov)
                pairs += meta
        elif cfg.method == "scpo":
            pairs, stats = scpo_pairs(traces, task.equivalent, prov=prov, threshold=cfg.threshold, suffix=suffix,
                                      include_unparseable=cfg.include_unparseable)
        elif cfg.method == "spin":
            pairs, stats = spin_pairs(traces, refs, prov=prov, suffix=suffix)
        elif cfg.method in ("gold-dpo", "v-star"):
            cap = 1 if cfg.method == "gold-dpo" else cfg.max_per_example
            pairs, stats = correctness_pairs(traces, prov=prov, method=cfg.method, max_pairs_per_example=cap,
                                             suffix=suffix)
            if cfg.method == "v-star":
                rows = correct_rows(traces, suffix=suffix, max_per_example=cfg.max_per_example, round_idx=r)
        else:  # cct
            from ..prompts import formats

            fmt = formats(task)
            # the task's own correct format where it has one (the built-in task: " #<answer>" in format 1, a
            # question-order solution in format 2)
            targets = {e.id: target for e in examples if (target := task.correct_target(e)) is not None}
            rows, stats = cct_rows(traces, refs, lambda i, text: fmt.correct(by_id[i], text), round_idx=r,
                                   suffix=suffix, max_per_kind=cfg.cct_max_per_kind, review_targets=targets)
        stats.update(pair_stats(pairs), rows=len(rows) if rows else len(pairs), sft_rows=len(rows),
                     split=self.rd.read_json(f"round-{r}/generate.json")["split"],
                     pair_gold=guards.pair_gold(task, by_id, pairs),
                     train_guards=guards.train_guards(task, by_id, traces, cfg.method),
                     judge_guards_round=r - 1,  # round-<r-1>/guards.json: the model that judged this data
                     seconds=round(time.perf_counter() - t0, 3))
        self.rd.write_jsonl(f"round-{r}/pairs.jsonl", (p.to_dict() for p in pairs))
        self.rd.write_jsonl(f"round-{r}/rows.jsonl", (x.to_dict() for x in rows))
        self.rd.write_json(f"round-{r}/data.json", stats)
        self.rd.mark(r, "select")
        self.log(f"round {r}: {len(pairs)} pairs, {len(rows)} SFT rows from {len(traces)} examples")
        return pairs, rows

    def _read_data(self, r: int) -> tuple[list[PreferencePair], list[SFTRow]]:
        return ([PreferencePair.from_dict(d) for d in self.rd.read_jsonl(f"round-{r}/pairs.jsonl")],
                [SFTRow.from_dict(d) for d in self.rd.read_jsonl(f"round-{r}/rows.jsonl")])

    # ---- train: DPO on the pairs (SFT on rows for v-star's generator and cct) -----------------------------
    def _phase_train(self, r: int, data) -> None:
        if self.rd.done(r, "train"):
            return
        t0, cfg = time.perf_counter(), self.cfg
        pairs, rows = data
        model, tok = self._policy(r - 1)
        stage, seed = self.rd.stage_dir(r), cfg.seed * 1000 + r
        sft = cfg.method in ("v-star", "cct")
        info: dict[str, Any] = {"start_round": r - 1, "objective": "sft" if sft else "dpo"}
        if sft and rows:
            model, res = train_sft(model, tok, [x.trl() for x in rows], settings_from(cfg, seed=seed), save_to=stage)
            info.update(res.to_dict(), first_loss=res.first_loss, last_loss=res.last_loss)
        elif not sft and pairs:
            self.log(f"round {r}: DPO ({'+'.join(cfg.loss_type)}) on {len(pairs)} pairs from round {r - 1}'s model")
            model, res = train_dpo(model, tok, [p.trl() for p in pairs], cfg.dpo_settings(seed), save_to=stage)
            info.update(res.summary())
        else:
            self.log(f"round {r}: nothing to train on; round {r} keeps round {r - 1}'s weights")
            save_policy(model, tok, stage)
            info.update(SFTResult(rows=0, steps=0).to_dict())
        self.rd.install_model(stage, r)
        if cfg.method == "v-star":
            info["verifier"] = self._train_verifier(r, seed)
        info["phase_seconds"] = round(time.perf_counter() - t0, 3)
        self.rd.write_json(f"round-{r}/train.json", info)
        self.memory = (r, model, tok)
        self.rd.mark(r, "train")

    def _train_verifier(self, r: int, seed: int) -> dict[str, Any]:
        """V-STaR: DPO from the base model on every round's (correct, incorrect) pairs, into round-r/verifier."""
        pairs = [p for j in range(1, r + 1) for p in self.rd.read_jsonl(f"round-{j}/pairs.jsonl")]
        tmp, dest = self.rd.path / f".round-{r}.verifier-tmp", self.rd.round_dir(r) / "verifier"
        shutil.rmtree(tmp, ignore_errors=True)
        model, tok = load_policy(self.base)
        if pairs:
            _, res = train_dpo(model, tok, [PreferencePair.from_dict(p).trl() for p in pairs],
                               self.cfg.dpo_settings(seed), save_to=tmp)
            out = res.summary()
        else:
            save_policy(model, tok, tmp)
            out = {"pairs": 0, "steps": 0}
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        return out

    # ---- evaluate: the loop's greedy accuracy plus each method's own measurements ------------------------
    def _evaluate(self, r: int) -> dict[str, Any]:
        self.rd.write_json(f"round-{r}/extra.json", self._extras(r))
        self.rd.write_json(f"round-{r}/guards.json", self._guards(r))
        return super()._evaluate(r)

    def _guards(self, r: int) -> dict[str, Any]:
        """The guard probe of round r's model on a dev slice (length drift against round 0's model)."""
        cfg = self.cfg
        base_len = None
        if r > 0 and self.rd.exists("round-0/guards.json"):
            base_len = self.rd.read_json("round-0/guards.json").get("length", {}).get("mean")
        probe_examples = self._examples(cfg.dev_split, cfg.guard_limit) if cfg.guard_limit else []
        return guards.probe(self._backend(r), self.task, probe_examples, cfg, r, base_len)

    def _extras(self, r: int) -> dict[str, Any]:
        cfg, task = self.cfg, self.task
        backend = self._backend(r)
        dev = self._examples(cfg.dev_split, cfg.eval_limit)
        refs = references(task, dev)
        out: dict[str, Any] = {}
        if refs and getattr(backend.capabilities, "loglikelihood", False):
            ids = [e for e in dev if e.id in refs]
            lls = backend.loglikelihood([task.prompt(e) for e in ids], [refs[e.id] for e in ids])
            out["gold_logp"] = {"mean": sum(lls) / len(lls), "n": len(lls)}
        if cfg.method == "cct" or cfg.eval_correction:
            from ..metrics.correction import correction_from_traces
            from ..strategies.self_correct import SelfCorrect

            traces = score_traces(task, dev, SelfCorrect(max_tokens=cfg.max_tokens).run(backend, task, dev))
            # an unreadable review answer is wrong, as in accuracy (else a model that answers the review prompt
            # with anything but an answer would drop out of CL / CS instead of showing as c→w)
            c = correction_from_traces(traces, unparsed_as_wrong=True)
            out["correction"] = {k: c[k] for k in ("n", "acc1", "acc2", "delta", "cl", "cs", "rss", "transitions",
                                                   "unparsed_initial", "unparsed_final")}
        if cfg.method == "v-star":
            out["best_of_n"] = self._best_of_n(r, backend, dev)
        return out

    def _best_of_n(self, r: int, backend, dev: list[Example]) -> dict[str, Any]:
        from ..answers import majority
        from ..strategies.best_of_n import BestOfN
        from .dpo import DPOVerifier

        cfg, task = self.cfg, self.task
        params = SamplingParams(n=cfg.bon_n, temperature=cfg.temperature, top_p=cfg.top_p,
                                max_tokens=cfg.max_tokens, seed=cfg.seed * 1000 + 999)
        pools = generate_step(backend, task, [task.prompt(e) for e in dev], params)
        first, vote, best, any_ok = [], [], [], []
        verifier = None
        if r > 0 and (self.rd.round_dir(r) / "verifier").exists():
            verifier = DPOVerifier(self.make_backend(str(self.rd.round_dir(r) / "verifier")),
                                   self.make_backend(str(self.base)), task, score=cfg.verifier_score)
        texts = [[c.text for c, a in zip(s.completions, s.answers) if a is not None] for s in pools]
        judged = verifier.assess(dev, texts).verdicts if verifier else None
        for i, (e, s) in enumerate(zip(dev, pools)):
            first.append(bool(task.check(e, s.answers[0])))
            vote.append(bool(task.check(e, majority(s.answers, task.equivalent)[0])))
            any_ok.append(any(task.check(e, a) for a in s.answers))
            if judged is not None:
                scores = iter(v.score for v in judged[i])
                per = [next(scores) if a is not None else None for a in s.answers]
                best.append(bool(task.check(e, BestOfN().select(task, s.answers, per)[0])))
        n = len(dev) or 1
        return {"n": len(dev), "samples": cfg.bon_n, "first_sample": sum(first) / n, "majority": sum(vote) / n,
                "pass_at_n": sum(any_ok) / n, "verifier": sum(best) / n if judged is not None else None}

    # ---- stopping and summary --------------------------------------------------------------------------
    def _stop_reason(self, r: int) -> str | None:
        reason = super()._stop_reason(r)
        if reason is None and self.cfg.collapse_stop:
            accs = [m["eval"][self.cfg.dev_split]["accuracy"] for m in round_metrics(self.rd.path)[:r]]
            if guards.collapsed(accs):
                shown = ", ".join(f"{a:.3f}" for a in accs[-3:])
                reason = f"collapse: dev accuracy fell two rounds in a row ({shown})"
        return reason

    def _summary(self, stop_reason: str | None) -> dict[str, Any]:
        summary = super()._summary(stop_reason)
        summary["paired"] = guards.paired_rounds(self.rd.path, self.cfg.dev_split)
        summary["paired_by_split"] = {split: guards.paired_rounds(self.rd.path, split)
                                      for split in self._eval_splits()}
        self.rd.write_json("summary.json", summary)
        return summary


# ---- model calls: self-judging, meta-judging, the guard probe ----------------------------------------------


def judge_samples(backend, task, examples: list[Example], traces: list[Trace], judge_name: str) -> list[Trace]:
    """Add the self-judge's verdict on every sample (one ``self-judge`` step; failed or empty samples get an
    undecided verdict) and the judge's own steps, with their token costs."""
    from ..strategies.best_of_n import self_verifier

    judge = self_verifier(judge_name, backend, task)
    gens = [t.steps[0] for t in traces]
    keep = [[j for j, c in enumerate(g.completions) if c.ok and c.text] for g in gens]
    judged = judge.assess(examples, [[g.completions[j].text for j in ks] for g, ks in zip(gens, keep)])
    out = []
    for t, g, ks, vs, steps in zip(traces, gens, keep, judged.verdicts, judged.steps):
        verdicts = [Verdict(score=None, correct=None, reason="not judged: failed or empty")] * len(g.completions)
        for j, v in zip(ks, vs):
            verdicts[j] = v
        all_steps = (*t.steps, *steps, Step(kind=SELF_JUDGE, verdicts=tuple(verdicts), info={"judge": judge_name}))
        out.append(t.replace(steps=all_steps, **spent(all_steps)))
    return out


def meta_judge(backend, task, examples: list[Example], traces: list[Trace], cfg, seed: int) -> list[Trace]:
    """Meta-Rewarding: two sampled rubric judgements of each pool's top-scored sample, compared by the model
    (pairwise, both orders); one ``meta-judge`` step per example."""
    from ..prompts import RUBRIC
    from ..verifiers.judge import PairwiseJudge

    prompts = []
    for e, t in zip(examples, traces):
        gen, judge = t.steps[0], next(s for s in t.steps if s.kind == SELF_JUDGE)
        scored = [(v.score, j) for j, v in enumerate(judge.verdicts) if v.score is not None]
        text = gen.completions[max(scored)[1]].text if scored else gen.completions[0].text
        prompts.append(RUBRIC.format(question=e.question, response=text.strip()))
    outs = backend.generate(prompts, SamplingParams(n=2, temperature=cfg.temperature, max_tokens=256, seed=seed))
    results, duels = PairwiseJudge(backend, task).compare([Example(e.id, p) for e, p in zip(examples, prompts)],
                                                          [o[0].text for o in outs], [o[1].text for o in outs])
    out = []
    for t, p, o, res, duel in zip(traces, prompts, outs, results, duels):
        step = Step(kind=META_JUDGE, prompt=p, completions=tuple(o),
                    info={"prompt": p, "judgements": [o[0].text, o[1].text], "preferred": res.preferred,
                          "consistent": res.consistent, "votes": list(res.votes)})
        steps = (*t.steps, step, *duel)
        out.append(t.replace(steps=steps, **spent(steps)))
    return out
