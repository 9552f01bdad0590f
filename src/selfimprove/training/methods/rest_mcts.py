"""ReST-MCTS* — "ReST-MCTS*: LLM Self-Training via Process Reward Guided Tree Search" (Zhang et al. 2024,
arXiv:2406.03816).

Each round: an MCTS (``strategies/mcts.py``) over every training example with round r-1's model, guided by the
process reward model (PRM) trained in round r-1 (``round-<r-1>/prm``; value ``prm``) or, before there is one,
by rollouts agreeing with their majority (no gold). The finished paths whose answer is the gold answer
(GOLD-READING), ranked by their value, give the SFT rows (at most ``keep`` per example); SFT continues
from round
r-1's model. After training, the PRM is retrained from the base model on per-step labels inferred from every
round's trees so far (``search_data.tree_prm_rows``: a node's share of gold-correct answers below it, turned
into labels by ``labels``, default the paper's inferred value), with the examples of a ``holdout`` share kept
out and used to report its step accuracy and F1 (``train.json``: ``prm``, ``prm_eval``); it is saved as
``round-<r>/prm``, a loadable model (``best-of-n:verifier=prm:path=...``).

Not covered: the paper's MCTS* value update with the quality-weighted reward and its self-critic; the policy
rows here are the search's own correct paths, not resampled.
"""

from __future__ import annotations

import os
import shutil
import zlib
from dataclasses import dataclass
from typing import Any

from ...records import Example, Trace
from ...strategies.base import score_traces
from ..data import SFTRow
from ..method import Built, Method, seed_of, sft_report
from ..prm import LABELS
from ..search_data import tree_nodes, tree_prm_rows
from .mcts_dpo import generated_tokens


@dataclass(frozen=True)
class RestMCTS(Method):
    """SFT on gold-correct search paths ranked by a PRM that is retrained on the trees every round."""

    name = "rest-mcts"
    paper = "ReST-MCTS*: LLM Self-Training via Process Reward Guided Tree Search, arXiv:2406.03816"
    objective = "sft"
    reads_gold = True

    iterations: int = 6
    """MCTS iterations per training example."""
    children: int = 3
    """Children sampled per expansion (MCTS's k)."""
    rollouts: int = 2
    """Rollouts per new node while there is no PRM yet (round 1)."""
    keep: int = 2
    """Correct paths kept per example (the best-valued first)."""
    labels: str = "inferred"
    """PRM label rule: some, most, soft or inferred (ReST-MCTS*'s inferred value)."""
    holdout: float = 0.2
    """Share of examples (by id) whose trees only evaluate the PRM."""
    prm_lr: float = 1e-3
    """PRM learning rate."""
    prm_max_steps: int = 100
    """Cap on PRM optimiser steps per round."""

    def validate(self, cfg) -> None:
        if self.iterations < 1 or self.children < 1 or self.rollouts < 1 or self.keep < 1:
            raise ValueError(f"{self.name}: iterations, children, rollouts and keep must be >= 1")
        if self.labels not in LABELS:
            raise ValueError(f"{self.name}: labels must be one of {', '.join(LABELS)}, got {self.labels!r}")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"{self.name}: holdout must be in [0, 1), got {self.holdout}")

    def prm_dir(self, loop, r: int):
        """Round r's PRM directory, None when round r trained none."""
        path = loop.rd.round_dir(r) / "prm"
        return path if r >= 1 and (path / "prm.json").exists() else None

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        from ...strategies.mcts import MCTS

        cfg, prm = loop.cfg, self.prm_dir(loop, r - 1)
        mcts = MCTS(
            value="prm" if prm else "rollout",
            prm=str(prm or ""),
            rollouts=self.rollouts,
            iterations=self.iterations,
            k=self.children,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            seed=seed_of(cfg, r),
        )
        return score_traces(loop.task, examples, mcts.run(backend, loop.task, examples))

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        by_id, rows = {e.id: e for e in examples}, []
        for t in traces:
            e = by_id[t.example_id]
            leaves = [
                n
                for n in tree_nodes(t)
                if n["terminal"] and n["step"].strip() and loop.task.check(e, n["answer"])
            ]
            leaves.sort(key=lambda n: -(n["value"] if n["value"] is not None else -1.0))
            seen: set[str] = set()
            for n in leaves:
                if n["prefix"] not in seen and len(seen) < self.keep:
                    seen.add(n["prefix"])
                    rows.append(
                        SFTRow(
                            loop.task.prompt(e),
                            n["prefix"] + loop.cfg.target_suffix,
                            e.id,
                            "search",
                            n["answer"],
                            r,
                        )
                    )
        stats = sft_report(self, loop.task, examples, traces, rows)
        stats.update(
            generated_tokens=generated_tokens(traces),
            guided_by_prm=self.prm_dir(loop, r - 1) is not None,
            solved_by_search=sum(any(1 for x in rows if x.example_id == t.example_id) for t in traces)
            / (len(traces) or 1),
        )
        return Built(rows=rows, stats=stats)

    def after_train(self, loop, r: int, seed: int) -> dict[str, Any]:
        """Retrain the PRM from the base model on every round's tree labels (held-out examples excluded) into
        ``round-<r>/prm`` (a temporary dir renamed: a killed run leaves none or all) and evaluate it."""
        from ..prm import PRMSettings, train_prm
        from ..prm_score import PRMScorer, prm_metrics

        train, held = [], []
        for j in range(1, r + 1):
            traces = [Trace.from_dict(d) for d in loop.rd.read_jsonl(f"round-{j}/traces.jsonl")]
            by_id = {e.id: e for e in loop.examples_of(j)}
            for t in traces:
                e = by_id[t.example_id]
                rows = tree_prm_rows(t, e, loop.task, loop.task.prompt(e), self.labels, j)
                (held if zlib.crc32(e.id.encode()) % 1000 < self.holdout * 1000 else train).extend(rows)
        if not train:
            return {"prm": {"rows": 0, "skipped": "no finished path in any tree"}}
        tmp, dest = loop.rd.path / f".round-{r}.prm-tmp", loop.rd.round_dir(r) / "prm"
        shutil.rmtree(tmp, ignore_errors=True)
        info = train_prm(
            loop.base,
            train,
            PRMSettings(lr=self.prm_lr, max_steps=self.prm_max_steps, seed=seed),
            tmp,
            meta={"labels": self.labels, "round": r},
        )
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        out: dict[str, Any] = {"prm": info, "prm_eval": {"solutions": 0}}
        if held:
            scorer = PRMScorer(dest)
            out["prm_eval"] = prm_metrics(
                scorer.score([x.prompt for x in held], [x.steps for x in held]), held
            )
        return out
