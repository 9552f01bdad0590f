"""Running strategies over a task's examples, storing traces as they finish and resuming where a run stopped.

Each strategy is a *scope* of the run (its label, e.g. ``self-consistency:n=16``). Examples are processed in
chunks; each chunk's traces are stored in one transaction, so a run killed part-way loses at most the chunk in
flight, and ``--resume`` continues with the examples whose traces are missing or failed (a request that failed
past its retries is stored as a trace with ``status='error'``; a resume runs exactly those examples again and
replaces their traces). Metrics are computed from the stored traces (never from in-memory state), so a resumed
run's metrics equal an uninterrupted run's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from .metrics.accuracy import accuracy, pool_metrics
from .metrics.analysis import analysis
from .metrics.gap import gap_from_traces
from .records import Example, Trace
from .store.runs import RunStore
from .strategies.base import describe, score_traces


def run_strategy(backend, task, examples: Sequence[Example], strategy, store: RunStore, run_id: str,
                 chunk: int = 16, progress=None) -> list[Trace]:
    """Run ``strategy`` on the examples whose traces are not yet stored; return all traces in example
    order."""
    scope = describe(strategy)
    done, failed = store.done_ids(run_id, scope), store.failed_ids(run_id, scope)
    todo = [(i, e) for i, e in enumerate(examples) if e.id not in done]
    task_id = progress.add_task(scope, total=len(examples), completed=len(done)) if progress else None
    for start in range(0, len(todo), chunk):
        batch = todo[start:start + chunk]
        t0 = time.perf_counter()
        traces = strategy.run(backend, task, [e for _, e in batch])
        wall = time.perf_counter() - t0
        traces = [t.replace(info={**t.info, "wall_s": wall / len(batch)})
                  for t in score_traces(task, [e for _, e in batch], traces)]
        # positions follow example order, so a resumed run stores the same positions as an uninterrupted one
        for (pos, e), t in zip(batch, traces):
            if e.id in failed:
                store.replace_traces(run_id, scope, [t], start=pos)
            else:
                store.add_traces(run_id, scope, [t], start=pos)
        if progress:
            progress.update(task_id, advance=len(batch))
    stored = {t.example_id: t for t in store.traces(run_id, scope)}
    return [stored[e.id] for e in examples]


def strategy_metrics(task, examples: Sequence[Example], traces: Sequence[Trace], seed: int = 0) -> dict:
    """The table row of one strategy: accuracy with CI, unparseable and failed (``errors``) counts, tokens,
    calls, wall time, ``analysis`` (calibration and correction cells, ``metrics.analysis``), pass@k / maj@k
    where the strategy kept a pool of several samples, and ``verification`` (the generation–verification gap
    and the calibration of per-sample scores) where it scored its pool. Tokens and calls count every trace
    (failed requests were paid for); the pool and verification metrics read the answered traces only."""
    m = accuracy(traces, seed=seed)
    n = max(len(traces), 1)
    m["prompt_tokens"] = sum(t.prompt_tokens for t in traces)
    m["completion_tokens"] = sum(t.completion_tokens for t in traces)
    m["tokens_per_example"] = (m["prompt_tokens"] + m["completion_tokens"]) / n
    m["calls"] = sum(t.calls for t in traces)
    m["wall_s"] = sum(t.info.get("wall_s", 0.0) for t in traces)
    answered = [t for t in traces if t.status == "ok"]
    pools = [next((s for s in t.steps if s.kind == "generate"), None) for t in answered]
    if answered and all(p is not None and len(p.completions) > 1 for p in pools):
        m.update(pool_metrics(task, examples, answered))
    if answered and all("feedback" in t.info for t in traces):  # a correction loop: what it fixed and broke
        from .metrics.correction import correction_from_traces

        m["correction"] = correction_from_traces(answered, unparsed_as_wrong=True)
        m["feedback"] = traces[0].info["feedback"] + (" (ORACLE)" if traces[0].info.get("oracle") else "")
    if any("scores" in t.info for t in answered):  # a pool ranked by self-verification (best-of-n)
        m["verification"] = gap_from_traces(task, examples, answered)
    m["analysis"] = analysis(traces)  # calibration and correction cells, for the report and the viewer
    return m
