"""Benchmark: how long the viewer takes to open the pages of a large eval run (goal: the run page < 1 s).

Builds a store holding one eval run of 100,000 traces (four strategies over 25,000 arithmetic problems,
written through ``RunStore.add_traces`` and ``runner.strategy_metrics`` as ``selfimprove eval`` writes them;
greedy and self-consistency traces carry real steps with per-token log-probabilities, self-correct a second
step), then opens the pages in-process through the Starlette app (HTTP handling, queries, template rendering;
no network) and prints the time of each, the run page first and cold (a fresh app, nothing cached).

    python bench/bench_view.py [--examples 25000] [--store PATH] [--keep]

The store is built in a temporary directory unless ``--store`` names one that already holds the run (then it
is reused: building takes minutes, mostly computing the metrics rows, maj@k of the pool above all). Figures
are separate requests (images the page loads after it is shown); their time is printed too.

Measured on the 2-core development machine under a load average of 19 (2026-11-30): the run page 0.42–0.66 s
cold in a fresh app (goal met), 0.14 s again; page 200 of the examples 0.16 s; a correction cell 0.77 s; a
paired test of two 25,000-trace strategies 1.6–3.2 s (both strategies' outcomes are read); an example 0.8 s
(its first gold lookup builds the task's splits); the runs list 0.16 s; a figure 0.8–1.0 s once matplotlib is
loaded. Before the store's summary index and the stored analyses the run page took 15–22 s.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

STRATEGIES = ("greedy", "self-consistency:n=4", "self-correct", "sample")


def build(path: Path, n_examples: int, seed: int = 0) -> str:
    from selfimprove.records import Completion, Example, Step, Trace
    from selfimprove.runner import strategy_metrics
    from selfimprove.store.runs import RunStore
    from selfimprove.tasks.arithmetic import ArithmeticTask

    task = ArithmeticTask()  # its gold check and answer equivalence score the synthetic examples
    rng = random.Random(seed)
    examples = [Example(id=f"arith-test-{i:06d}", question=f"{i}+{i}", answer=str(2 * i))
                for i in range(n_examples)]
    store = RunStore(path)
    run_id = store.create_run("eval", {"model": "bench", "task": "arithmetic", "split": "test",
                                       "strategies": list(STRATEGIES)})

    def completion(text: str) -> Completion:
        lps = tuple(round(-abs(rng.gauss(0, 0.6)), 4) for _ in text)
        return Completion(text=text, token_logprobs=lps, prompt_tokens=16, completion_tokens=len(text))

    for scope in STRATEGIES:
        traces = []
        for e in examples:
            k = 4 if ":n=4" in scope else 1
            answers = [e.answer if rng.random() < 0.7 else str(int(e.answer) + 1) for _ in range(k)]
            step = Step("generate", prompt=f"a{e.question} b{e.answer}:",
                        completions=tuple(completion(f" {e.question}={a} #{a}") for a in answers),
                        answers=tuple(answers))
            steps, final = [step], max(set(answers), key=answers.count)
            if scope == "self-correct":
                final = e.answer if rng.random() < 0.6 else answers[0]
                steps.append(Step("correct", prompt=step.prompt + " !",
                                  completions=(completion(f" #{final}"),),
                                  answers=(final,)))
            conf = answers.count(final) / k if k > 1 else None
            traces.append(Trace(e.id, scope, steps=tuple(steps), initial_answer=answers[0],
                                final_answer=final,
                                confidence=conf, correct=final == e.answer,
                                initial_correct=answers[0] == e.answer,
                                prompt_tokens=16 * len(steps), completion_tokens=sum(
                                    c.completion_tokens for s in steps for c in s.completions),
                                calls=len(steps)))
        for i in range(0, len(traces), 5000):
            store.add_traces(run_id, scope, traces[i:i + 5000], start=i)
        store.put_metrics(run_id, scope, strategy_metrics(task, examples, traces))
    store.set_status(run_id, "done")
    store.close()
    return run_id


def timed(client, url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = client.get(url)
    return time.perf_counter() - t0, r.status_code


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=25_000, help="examples per strategy (4 strategies)")
    ap.add_argument("--store", help="store file to build or reuse")
    ap.add_argument("--keep", action="store_true", help="keep the temporary store")
    args = ap.parse_args()
    from starlette.testclient import TestClient

    from selfimprove.view.app import create_app
    from selfimprove.view.store import ViewStore

    tmp = None if args.store else tempfile.mkdtemp(prefix="bench-view-")
    path = Path(args.store or Path(tmp) / "runs.db")
    runs = ViewStore(path).list_runs()[0] if path.exists() else []
    if runs:
        run_id = runs[0]["id"]
    else:
        t0 = time.perf_counter()
        run_id = build(path, args.examples)
        print(f"built {4 * args.examples:,} traces in {time.perf_counter() - t0:.1f} s "
              f"({path.stat().st_size / 2**20:.0f} MiB) at {path}")
    traces = ViewStore(path).scopes(run_id)
    print(f"run {run_id}: {sum(traces.values()):,} traces in {len(traces)} scopes")
    client = TestClient(create_app(path))  # fresh app: nothing cached
    rows = [("run page (cold)", f"/run/{run_id}"), ("run page (again)", f"/run/{run_id}"),
            ("run page, page 200 of examples", f"/run/{run_id}?page=200"),
            ("correction cell c→w of self-correct", f"/run/{run_id}?scope=self-correct&cell=cw"),
            ("paired test greedy vs self-correct", f"/run/{run_id}?a=greedy&b=self-correct"),
            ("example page", f"/run/{run_id}/example?id=arith-test-{args.examples // 2:06d}"),
            ("runs list", "/")]
    rows += [(f"figure {name}", f"/run/{run_id}/plot/{name}.png")
             for name in ("accuracy-tokens", "cost", "calibration", "correction")]
    for label, url in rows:
        seconds, status = timed(client, url)
        print(f"{label:40s} {seconds * 1000:8.0f} ms  (HTTP {status})")
    goal = timed(TestClient(create_app(path)), f"/run/{run_id}")[0]
    print(f"run page, cold, fresh app: {goal:.3f} s — goal < 1 s: {'met' if goal < 1 else 'NOT met'} "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    if tmp and not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
