"""scripts/results_table.py: one table over several eval runs of the scripted double, paired against each
run's first strategy (no model)."""

from __future__ import annotations

from pathlib import Path

from conftest import load_script

from selfimprove.cli.main import main
from selfimprove.metrics.stats import mcnemar_exact
from selfimprove.store.runs import RunStore


def _load():
    return load_script("results_table")


def _eval(store: Path, *strategies: str) -> str:
    argv = ["eval", "--model", "scripted", "--task", "arithmetic", "--limit", "12", "--store", str(store)]
    assert main(argv + [a for s in strategies for a in ("--strategy", s)]) == 0
    s = RunStore(str(store))
    try:
        return s.list_runs()[0]["id"]
    finally:
        s.close()


def test_rows_of_several_runs_paired_with_each_runs_baseline(tmp_path, capsys):
    mod = _load()
    store = tmp_path / "runs.db"
    first = _eval(store, "greedy", "self-consistency:n=4")
    second = _eval(store, "greedy", "sample:n=2", "self-consistency:n=4")  # measured again: printed once
    capsys.readouterr()
    s = RunStore(str(store))
    lines = mod.table(s, [first, second])
    greedy = {t.example_id: bool(t.correct) for t in s.traces(first, "greedy")}
    sc = {t.example_id: bool(t.correct) for t in s.traces(first, "self-consistency:n=4")}
    s.close()
    body = [ln for ln in lines[2:] if ln.startswith("|")]
    # the second run's greedy row repeats the first's answers (scripted greedy is deterministic): printed once
    assert [ln.split(" | ")[0] for ln in body] == [
        "| greedy", "| self-consistency:n=4", "| sample:n=2"]
    assert body[0].endswith(f"| baseline | — | {first} |") and body[2].endswith(f" {second} |")
    cells = body[1].split(" | ")
    assert cells[1] == "12" and cells[-2] == f"{mcnemar_exact(greedy, sc)['p_value']:.3g}"
    assert cells[-3].startswith(f"{100 * mcnemar_exact(greedy, sc)['diff']:+.1f} (")


def test_an_unfinished_strategy_is_left_out_with_a_line(tmp_path):
    mod = _load()
    store = tmp_path / "runs.db"
    run = _eval(store, "greedy", "self-consistency:n=4")
    s = RunStore(str(store))
    with s.db:
        s.db.execute("DELETE FROM metrics WHERE run_id = ? AND scope LIKE 'self-consistency%'", (run,))
    lines = mod.table(s, [run])
    s.close()
    assert [ln for ln in lines if ln.startswith("| self-consistency")] == []
    assert lines[-1] == f"{run}: self-consistency:n=4 (12 examples done) left out: not finished"
