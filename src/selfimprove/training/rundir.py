"""The training run directory: atomic phase outputs, a round-state marker, and the mirror into the RunStore.

Layout (``RUN/``)::

    config.json            resolved LoopConfig, model, task, versions (written once)
    state.json             the last completed (round, phase) — the resume marker
    round-0/metrics.json   evaluation of the starting model (round 0 has no weights of its own)
    round-<r>/             a loadable HF model dir (config.json, weights, tokenizer) once 'train'
                           is done, plus
        traces.jsonl       generation traces   (phase 'generate')
        rows.jsonl         kept SFT rows        (phase 'select'; with labels.jsonl and data.json)
        train.json         the SFTResult        (phase 'train')
        eval-<split>.jsonl greedy eval traces   (phase 'eval'; with metrics.json)
    metrics.jsonl          one line per finished round (rewritten from round-*/metrics.json)
    summary.json           best round, stop reason (written at the end)

Every file is written to a temporary name and renamed into place (``os.replace`` is atomic on POSIX), and the
marker moves only after a phase's files are in place. A run killed at any instant therefore holds, for each
phase, either all of its output or none: resuming reruns exactly the phases after the marker, with the same
seeds, and overwrites (never appends) — no record lost, none duplicated.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PHASES = ("generate", "select", "train", "eval")
"""The phases of a round, in order. Round 0 has only 'eval'."""


class RunDir:
    """Reads and writes one training run's directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def round_dir(self, r: int) -> Path:
        return self.path / f"round-{r}"

    # ---- atomic writes -------------------------------------------------------------------------------
    def write_json(self, rel: str | Path, obj: Any) -> Path:
        return self._atomic(rel, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")

    def write_jsonl(self, rel: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
        return self._atomic(rel, "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows))

    def _atomic(self, rel: str | Path, text: str) -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        with tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        return target

    def install_model(self, staged: Path, r: int) -> Path:
        """Move every file of a staged model dir into ``round-<r>/`` (each move atomic), then drop the
        stage."""
        dest = self.round_dir(r)
        dest.mkdir(parents=True, exist_ok=True)
        for f in sorted(staged.iterdir()):
            if f.is_file():
                os.replace(f, dest / f.name)
        shutil.rmtree(staged, ignore_errors=True)
        return dest

    def stage_dir(self, r: int) -> Path:
        """A fresh temporary directory for the round's model (removed first if a crash left one)."""
        stage = self.path / f".round-{r}.model-tmp"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        return stage

    def clean(self) -> list[Path]:
        """Remove what a killed run can leave behind: temporary files and staged model dirs. Returns them."""
        if not self.path.exists():
            return []
        stale = [p for p in self.path.rglob(".*.tmp-*")] + list(self.path.glob(".round-*.model-tmp"))
        for p in stale:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        return stale

    # ---- reads ---------------------------------------------------------------------------------------
    def read_json(self, rel: str | Path) -> Any:
        with (self.path / rel).open(encoding="utf-8") as f:
            return json.load(f)

    def read_jsonl(self, rel: str | Path) -> list[dict[str, Any]]:
        with (self.path / rel).open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def exists(self, rel: str | Path) -> bool:
        return (self.path / rel).exists()

    # ---- the marker ----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """{'round': r, 'phase': p} of the last completed phase; round -1 when nothing is done yet."""
        if not self.exists("state.json"):
            return {"round": -1, "phase": PHASES[-1]}
        return self.read_json("state.json")

    def done(self, r: int, phase: str) -> bool:
        """Whether (r, phase) completed before now (per the marker)."""
        s = self.state()
        return (r, _order(r, phase)) <= (s["round"], _order(s["round"], s["phase"]))

    def mark(self, r: int, phase: str, **extra: Any) -> None:
        self.write_json("state.json", {"round": r, "phase": phase, **extra})


def _order(r: int, phase: str) -> int:
    return PHASES.index(phase) if r > 0 or phase != "eval" else len(PHASES) - 1


def sync_store(store, run_id: str, scope: str, traces=(), metrics: dict[str, Any] | None = None) -> None:
    """Mirror a phase's traces and metrics into the RunStore, idempotently (a resumed run adds only the
    traces the store does not hold yet; metrics are replaced)."""
    if store is None or run_id is None:
        return
    traces = list(traces)
    if traces:
        have = store.done_ids(run_id, scope)
        missing = [(i, t) for i, t in enumerate(traces) if t.example_id not in have]
        if len(missing) == len(traces):
            store.add_traces(run_id, scope, traces, start=0)  # the usual case: one transaction
        else:
            for i, t in missing:
                store.add_traces(run_id, scope, [t], start=i)
    if metrics:
        store.put_metrics(run_id, scope, metrics)
