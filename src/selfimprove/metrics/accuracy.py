"""Accuracy with its unparseable count, unbiased pass@k, maj@k from one pool, bootstrap CIs.

- ``accuracy(traces)``: correct ÷ scored, where scored = n − errors. A trace whose requests failed past their
  retries (``status != 'ok'``) is no answer of the model: it is counted under ``errors`` and left out of the
  denominator (the run is stored 'incomplete' and ``--resume`` retries it; accuracy is None when nothing was
  scored). Unparseable (final answer None) and undecided (correct None) answered traces stay in the
  denominator as wrong and are counted beside it — never dropped silently. ``empty`` counts answered traces
  whose completions were all empty texts.
  A trace without an answer is ``truncated`` when one of its answer-bearing completions was cut at max_tokens
  (``Trace.info['truncated']``), ``unparsed`` otherwise: the two are disjoint and both count as wrong.
  ``unscored`` / ``verdicts``: the self-verifier or judge verdicts a strategy asked for and the ones it could
  not give; ``all_unscored``: traces whose selection had no scored verdict at all.
- ``pass_at_k(n, c, k)``: Chen et al. 2021 (Codex), 1 − C(n−c, k)/C(n, k), unbiased for a pool of n samples
  with c correct.
- ``maj_at_k``: accuracy of a majority vote over k of the n samples, averaged over random k-subsets of the
  pool (exact for k = n; ``subsets`` random draws otherwise, seeded). Ties go to the first-seen answer among
  the subset, as in ``strategies.self_consistency``.
- ``bootstrap_ci`` (from ``metrics.stats``): percentile bootstrap of a mean, seeded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..answers import majority
from ..records import Trace
from .stats import bootstrap_ci


def accuracy(traces: Sequence[Trace], ci: bool = True, seed: int = 0) -> dict:
    n = len(traces)
    answered = [t for t in traces if t.status == "ok"]
    correct = [1.0 if t.correct else 0.0 for t in answered]
    out = {
        "n": n,
        "scored": len(answered),
        "correct": int(sum(correct)),
        "accuracy": (sum(correct) / len(answered)) if answered else None,
        "unparsed": sum(t.final_answer is None and not t.info.get("truncated") for t in answered),
        "truncated": sum(t.final_answer is None and bool(t.info.get("truncated")) for t in answered),
        "undecided": sum(t.correct is None for t in answered),
        "errors": n - len(answered),
        "empty": sum(_all_empty(t) for t in answered),
    }
    if any("verdicts" in t.info for t in traces):
        out["verdicts"] = sum(t.info.get("verdicts", 0) for t in traces)
        out["unscored"] = sum(t.info.get("unscored", 0) for t in traces)
        out["all_unscored"] = sum(bool(t.info.get("all_unscored")) for t in traces)
    if ci:
        out["ci95"] = bootstrap_ci(correct, seed=seed)
    return out


def _all_empty(trace: Trace) -> bool:
    comps = [c for s in trace.steps for c in s.completions]
    return bool(comps) and all(c.empty for c in comps)


def failure_cells(m: dict, errors: bool = False) -> tuple[str, ...]:
    """The table cells (unparsed, truncated, unscored) of one metrics row, shared by the eval table and the
    HTML report: 'k/n' counts, '—' where a count does not apply (no verifier) or an older run did not record
    it; unscored reads 'u/v' verdicts, with '· k none' for the examples where no verdict could be scored.
    ``errors=True`` puts the failed-request count ('k/n': examples whose requests failed past their retries,
    not scored) after unparsed."""
    n = m["n"]
    truncated = f"{m['truncated']}/{n}" if "truncated" in m else "—"
    failed = (f"{m['errors']}/{n}" if "errors" in m else "—",) if errors else ()
    if "verdicts" not in m:
        return f"{m['unparsed']}/{n}", *failed, truncated, "—"
    unscored = f"{m['unscored']}/{m['verdicts']}"
    if m.get("all_unscored"):
        unscored += f" · {m['all_unscored']} none"
    return f"{m['unparsed']}/{n}", *failed, truncated, unscored


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for n samples with c correct (Chen et al. 2021)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def maj_at_k(answers: Sequence[str | None], gold_check: Callable[[str | None], bool | None], k: int,
             subsets: int = 64, seed: int = 0, equivalent=None) -> float:
    """Expected correctness (0..1) of a majority vote over k of this pool's answers."""
    n = len(answers)
    if not 1 <= k <= n:
        raise ValueError(f"maj_at_k needs 1 <= k <= n={n}, got k={k}")
    if k == n:
        return float(bool(gold_check(majority(answers, equivalent)[0])))
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(subsets):
        idx = sorted(rng.choice(n, size=k, replace=False))
        hits += bool(gold_check(majority([answers[i] for i in idx], equivalent)[0]))
    return hits / subsets


def pool_metrics(task, examples, traces: Sequence[Trace], ks: Sequence[int] | None = None) -> dict:
    """pass@k and maj@k for every k in ``ks`` (default: powers of two up to n, and n) from the sample pool of
    each trace's first generate step."""
    by_id = {e.id: e for e in examples}
    pools = [(by_id[t.example_id], next(s for s in t.steps if s.kind == "generate").answers) for t in traces]
    n = min(len(a) for _, a in pools)
    if task.code:  # one batch up front: a task that runs tests caches the results
        task.check_batch([(ex, a) for ex, answers in pools for a in answers[:n] if a is not None])
    if ks is None:
        ks = sorted({2 ** i for i in range(int(math.log2(n)) + 1)} | {n})
    out = {}
    for k in ks:
        passes, majs = [], []
        for ex, answers in pools:
            answers = answers[:n]
            c = sum(bool(task.check(ex, a)) for a in answers)
            passes.append(pass_at_k(n, c, k))
            majs.append(maj_at_k(answers, lambda a, ex=ex: task.check(ex, a), k, equivalent=task.equivalent))
        out[f"pass@{k}"] = float(np.mean(passes))
        out[f"maj@{k}"] = float(np.mean(majs))
    out["n_samples"] = n
    return out
