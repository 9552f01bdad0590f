"""Real runs for the viewer's tests: strategies run through the runner on the arithmetic task with a scripted
backend (right on even answers, wrong on odd ones; a review fixes some and breaks others; a search continues
its partial solutions with the worked solution and records its tree), stored in a RunStore
exactly as ``selfimprove eval`` stores them. One completion carries a ``<script>`` payload that must be shown,
never run."""

from __future__ import annotations

import re
from pathlib import Path

from selfimprove.backends.scripted import ScriptedBackend
from selfimprove.runner import run_strategy, strategy_metrics
from selfimprove.store.runs import RunStore
from selfimprove.strategies import get_strategy
from selfimprove.strategies.base import describe
from selfimprove.tasks.arithmetic import ArithmeticTask

PAYLOAD = "<script>window.__pwned = 1</script>"
STRATEGIES = ("greedy", "self-consistency:n=4,temperature=0.8,seed=1", "self-correct", "beam")


def scripted(task: ArithmeticTask, n: int) -> ScriptedBackend:
    """The viewer's own double, not the library's ``scripted`` model: its review must break right answers
    (c→w cells to click), one completion carries the payload, and searches need branching partial
    solutions."""
    by_prompt = {task.prompt(e): (i, e) for i, e in enumerate(task.examples("test")[:n])}

    def solve(prompt: str, k: int):
        i, e = by_prompt[prompt]
        right = task.solution(e)
        text = right if int(e.answer) % 2 == 0 or k % 2 == 1 else re.sub(
            r"#\d+$", "#" + task.encode(int(e.answer) + 1), right)
        return (PAYLOAD + text if i == 0 else text, -0.05 - 0.3 * (k % 3))

    def review(prompt: str, k: int):
        i, e = by_prompt[prompt.split(":", 1)[0] + ":"]
        right = task.solution(e)
        if i % 3 == 0:  # the review turns every third answer wrong (c→w where it was right)
            return re.sub(r"#\d+$", "#" + task.encode(int(e.answer) + 2), right), -1.2
        return right, -0.4  # and fixes the others (w→c where it was wrong)

    asked: dict[str, int] = {}

    def extend(prompt: str, k: int):  # a search's partial solution: the rest of the worked solution
        head = prompt.split(":", 1)[0] + ":"
        if head not in by_prompt or prompt.endswith((" ?", " !")):
            return "?"
        e = by_prompt[head][1]
        done, right = prompt[len(head):], task.solution(e)
        rest = right[len(done):] if right.startswith(done) else " #0"
        asked[prompt] = asked.get(prompt, 0) + 1  # counts samples, across calls
        if rest.lstrip().startswith("#") and asked[prompt] % 2 == 0:  # every other sample: a wrong last step
            rest = rest[:len(rest) - len(rest.lstrip())] + "#" + task.encode(int(e.answer) + 1)
        return rest, -0.1 - 0.2 * k

    return ScriptedBackend(rules=[(r":$", solve), (r" !$", review), (r"", extend)], default="?")


def build_eval_run(store_path: Path, n: int = 24) -> str:
    """One eval run of three strategies over ``n`` test problems; returns its run id."""
    task = ArithmeticTask(n_test=max(n, 8))
    examples = task.examples("test")[:n]
    backend = scripted(task, n)
    store = RunStore(store_path)
    config = {"model": "scripted-viewer-test", "task": task.describe(), "data": None, "split": "test",
              "limit": n, "strategies": list(STRATEGIES), "seed": 0, "chunk": 8}
    run_id = store.create_run("eval", config, seed=0)
    for spec in STRATEGIES:
        strategy = get_strategy(spec)
        traces = run_strategy(backend, task, examples, strategy, store, run_id, chunk=8)
        store.put_metrics(run_id, describe(strategy), strategy_metrics(task, examples, traces))
    store.set_status(run_id, "done")
    store.close()
    return run_id


def build_training_run(store_path: Path, run_dir: Path, model_dir: Path) -> str:
    """One round of ScPO (DPO on majority-vote pairs, with guards) on a model directory, with the library's
    scripted double as generator and judge and real TRL training, mirrored into the store as ``selfimprove
    train`` does."""
    from selfimprove.backends.scripted import ScriptedCalculator
    from selfimprove.training.config import LoopConfig
    from selfimprove.training.loop import run_loop

    task = ArithmeticTask(n_train=12, n_dev=6, n_test=6)
    cfg = LoopConfig.from_dict({"method": "scpo", "rounds": 1, "n": 4, "threshold": 0.0, "patience": 0,
                                "train_limit": 6, "eval_limit": 3, "max_steps": 2, "batch_size": 4,
                                "guards": {"limit": 3, "n": 2}})
    store = RunStore(store_path)
    config = {"command": "train", "model": "tiny-random", "model_path": str(model_dir),
              "task": task.describe(),
              "data": None, "loop": cfg.to_dict()}
    run_id = store.create_run("train", config, seed=cfg.seed)
    store.put_metrics(run_id, "run", {"run_dir": str(run_dir)})
    backend = ScriptedCalculator(error_rate=0.5, seed=11, distinct_errors=True)
    run_loop(cfg, task, model_dir, run_dir, store=store, run_id=run_id, make_backend=lambda p: backend,
             log=lambda m: None)
    store.set_status(run_id, "done")
    store.close()
    return run_id
