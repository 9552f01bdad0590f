"""V-STaR — "V-STaR: Training Verifiers for Self-Taught Reasoners" (Hosseini et al. 2024, arXiv:2402.06457).

STaR rounds for the generator (``star.py``: SFT on gold-verified samples, with rationalisation), plus a
verifier: every round, DPO from the *base* model on all (correct, incorrect) sample pairs of every round so
far, saved as ``round-<r>/verifier``. A candidate's verifier score is the DPO implicit reward log π_V − log
π_ref (``verifier_score='logratio'``) or log π_V. Every evaluation measures best-of-``eval_n`` with the
verifier beside the first sample, majority vote and pass@n over the same samples.

Not covered: the paper's verifier-guided search at test time beyond best-of-n.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any

from ...records import Example, SamplingParams, Trace
from ...strategies.base import generate_step
from ..data import correct_rows
from ..method import Built, pair_report, seed_of
from ..preferences import PreferencePair, Provenance, correctness_pairs
from .star import Star


@dataclass(frozen=True)
class VStar(Star):
    """STaR's generator rounds plus a DPO-trained verifier, evaluated as best-of-n."""

    name = "v-star"
    paper = "V-STaR: Training Verifiers for Self-Taught Reasoners, arXiv:2402.06457"
    objective = "sft"
    guarded = True

    verifier_score: str = "logratio"
    """Verifier score: 'logratio' (log π_V − log π_ref) or 'likelihood' (log π_V)."""
    eval_n: int = 8
    """Samples per dev example for best-of-n with the verifier at every evaluation."""

    def validate(self, cfg) -> None:
        super().validate(cfg)
        if self.verifier_score not in ("logratio", "likelihood") or self.eval_n < 1:
            raise ValueError(f"{self.name}: verifier_score must be logratio or likelihood and eval_n >= 1, "
                             f"got {self.verifier_score!r}, {self.eval_n}")

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        prov = Provenance(r, model=str(loop.path(r - 1)), seed=seed_of(loop.cfg, r))
        suffix = loop.cfg.target_suffix
        pairs, stats = correctness_pairs(traces, prov=prov, method=self.name, suffix=suffix,
                                         max_pairs_per_example=self.max_per_example)
        rows = correct_rows(traces, suffix=suffix, max_per_example=self.max_per_example, round_idx=r)
        stats = pair_report(self, loop, r, traces, examples, stats, pairs, rows)
        return Built(rows=rows, pairs=pairs, stats=stats)

    def after_train(self, loop, r: int, seed: int) -> dict[str, Any]:
        """The verifier: DPO from the base model on every round's (correct, incorrect) pairs, into
        ``round-<r>/verifier`` (written to a temporary dir and renamed: a killed run leaves none or all)."""
        from ..dpo import train_dpo
        from ..sft import load_policy, save_policy

        pairs = [p for j in range(1, r + 1) for p in loop.rd.read_jsonl(f"round-{j}/pairs.jsonl")]
        tmp, dest = loop.rd.path / f".round-{r}.verifier-tmp", loop.rd.round_dir(r) / "verifier"
        shutil.rmtree(tmp, ignore_errors=True)
        model, tok = load_policy(loop.base)
        if pairs:
            _, res = train_dpo(model, tok, [PreferencePair.from_dict(p).trl() for p in pairs],
                               loop.trainer_settings("dpo", seed), save_to=tmp, chat=loop.chat)
            out = res.summary()
        else:
            save_policy(model, tok, tmp)
            out = {"pairs": 0, "steps": 0}
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        return {"verifier": out}

    def evaluate(self, loop, r: int, backend, dev: list[Example]) -> dict[str, Any]:
        return {"best_of_n": self.best_of_n(loop, r, backend, dev)}

    def best_of_n(self, loop, r: int, backend, dev: list[Example]) -> dict[str, Any]:
        """Accuracy of the first sample, the majority vote, the verifier's pick and pass@n over ``eval_n``
        samples per dev example (the verifier's pick is None before round 1)."""
        from ...answers import majority
        from ...strategies.best_of_n import BestOfN
        from ..dpo import DPOVerifier

        cfg, task = loop.cfg, loop.task
        params = SamplingParams(n=self.eval_n, temperature=cfg.temperature, top_p=cfg.top_p,
                                max_tokens=cfg.max_tokens, seed=cfg.seed * 1000 + 999)
        pools = generate_step(backend, task, [task.prompt(e) for e in dev], params)
        first, vote, best, any_ok = [], [], [], []
        verifier = None
        if r > 0 and (loop.rd.round_dir(r) / "verifier").exists():
            verifier = DPOVerifier(loop.make_backend(str(loop.rd.round_dir(r) / "verifier")),
                                   loop.make_backend(str(loop.base)), task, score=self.verifier_score)
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
        return {"n": len(dev), "samples": self.eval_n, "first_sample": sum(first) / n,
                "majority": sum(vote) / n, "pass_at_n": sum(any_ok) / n,
                "verifier": sum(best) / n if judged is not None else None}
