"""scripts/search_study.py --combine / --plot: pooling per-seed and per-budget result files and drawing the
accuracy-versus-tokens curves, on result files written here (no model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_script


def _load():
    return load_script("search_study")


def _row(budget, strategy, seed, correct, tokens):
    return {"budget": budget, "strategy": strategy, "spec": strategy, "completion": tokens * len(correct),
            "prompt": 10 * len(correct), "n": len(correct), "wall_s": 1.0, "unparseable": 0,
            "correct": [[seed, f"e{i}", c] for i, c in enumerate(correct)]}


def _file(path: Path, rows) -> str:
    path.write_text(json.dumps({"args": {"model": "m-x", "task": "t-x", "split": "s-x", "limit": 4},
                                "raw": rows}))
    return str(path)


GREEDY = {0: [True, False, True, False], 1: [True, False, True, False]}


def _budget(seed, budget, sc, bon, beam, scale):
    return [_row(budget, "self-consistency", seed, sc, 100 * scale),
            _row(budget, "best-of-n", seed, bon, 110 * scale),
            _row(budget, "beam:final=value", seed, beam, 80 * scale),
            _row(budget, "beam:final=majority", seed, beam, 80 * scale)]


@pytest.fixture
def files(tmp_path):
    """Seed 0 in two jobs (B1, then B2; greedy in both), seed 1 in one job (B1 and B2)."""
    t, f = True, False
    s0b1 = [_row("B0", "greedy", 0, GREEDY[0], 30), *_budget(0, "B1", [t, t, f, f], [t, f, f, f],
                                                             [t, t, t, f], 1)]
    s0b2 = [_row("B0", "greedy", 0, GREEDY[0], 30), *_budget(0, "B2", [t, t, t, f], [t, t, f, f],
                                                             [t, t, f, f], 2)]
    s1 = [_row("B0", "greedy", 1, GREEDY[1], 30), *_budget(1, "B1", [t, f, f, f], [f, f, f, f],
                                                           [t, t, f, f], 1),
          *_budget(1, "B2", [t, t, t, t], [t, t, t, f], [t, t, t, t], 2)]
    return [_file(tmp_path / n, r) for n, r in (("s0-B1.json", s0b1), ("s0-B2.json", s0b2), ("s1.json", s1))]


def test_combine_counts_a_row_repeated_by_jobs_of_one_seed_once(files):
    mod = _load()
    rows = mod.combine(files)
    greedy = rows[("B0", "greedy")]
    assert greedy["n"] == 8 and len(greedy["correct"]) == 8  # 2 seeds x 4, not 3 files x 4
    assert greedy["completion"] == 8 * 30
    report = {(e["budget"], e["strategy"]): e for e in mod.summarise(rows)}
    assert report[("B0", "greedy")]["accuracy"] == 0.5
    assert report[("B1", "self-consistency")]["accuracy"] == 3 / 8
    beam = report[("B1", "beam:final=value")]
    assert beam["accuracy"] == 5 / 8
    assert beam["vs_self-consistency"]["diff"] == pytest.approx(2 / 8)  # paired over (seed, example)
    assert beam["vs_best-of-n"]["diff"] == pytest.approx(4 / 8)


def test_combine_refuses_a_repeated_row_that_disagrees(files, tmp_path):
    mod = _load()
    other = _file(tmp_path / "bad.json", [_row("B0", "greedy", 0, [True, True, True, False], 30)])
    with pytest.raises(SystemExit, match="greedy repeats"):
        mod.combine([*files, other])


def test_plot_writes_a_png_with_one_curve_per_family_over_the_budgets(files, tmp_path, capsys):
    mod = _load()
    out, png = tmp_path / "pooled.json", tmp_path / "curves.png"
    assert mod.main(["--combine", *files, "--plot", str(png), "--out", str(out)]) == 0
    assert "model m-x · task t-x · split s-x · n = 4 · seeds [0, 1]" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    report = json.loads(out.read_text())["rows"]
    curves = mod.curves(report)
    # beam's majority rule is not a drawn series; greedy is one point
    assert list(curves) == ["greedy", "self-consistency", "best-of-n", "beam:final=value"]
    assert [p[4] for p in curves["self-consistency"]] == ["B1", "B2"]
    assert [p[0] for p in curves["self-consistency"]] == [100, 200]  # generated tokens per example
    assert [p[1] for p in curves["beam:final=value"]] == [5 / 8, 6 / 8]
    assert curves["greedy"] == [(30, 0.5, *mod.summarise(mod.combine(files))[0]["ci"], "B0")]
    lo, acc, hi = curves["best-of-n"][0][2], curves["best-of-n"][0][1], curves["best-of-n"][0][3]
    assert lo <= acc <= hi




def _train_run(path: Path, start: list[bool], last: list[bool], tokens: int) -> None:
    """A finished one-round run directory: round-0 and round-1 evaluations, round-1 data and traces."""
    from selfimprove.records import Completion, Step, Trace

    for r, correct in ((0, start), (1, last)):
        d = path / f"round-{r}"
        d.mkdir(parents=True)
        for split in ("dev", "test-hard"):
            rows = [Trace(example_id=f"e{i}", strategy="greedy", correct=c, final_answer="1",
                          steps=[Step(kind="generate", prompt="p",
                                      completions=[Completion(text="x", completion_tokens=5)])])
                    for i, c in enumerate(correct)]
            (d / f"eval-{split}.jsonl").write_text("".join(json.dumps(t.to_dict()) + "\n" for t in rows))
    sample = Trace(example_id="e0", strategy="sample", steps=[Step(kind="generate", prompt="p", completions=[
        Completion(text="x", completion_tokens=tokens)])])
    (path / "round-1/traces.jsonl").write_text(json.dumps(sample.to_dict()) + "\n")
    (path / "round-1/data.json").write_text(json.dumps({"rows": 3}))
    (path / "summary.json").write_text(json.dumps({"dev_accuracy": [sum(start) / 4, sum(last) / 4],
                                                   "rounds_done": 1}))


def test_train_study_pool_pairs_finished_runs_of_several_seeds_without_training(tmp_path):
    mod = load_script("search_train_study")
    t, f = True, False
    start = [t, f, f, f]
    for seed in (0, 1):
        _train_run(tmp_path / f"s{seed}-star", start, [t, t, t, f], 40)
        _train_run(tmp_path / f"s{seed}-no-filter", start, [t, t, f, f], 8)
    out = tmp_path / "pooled.json"
    assert mod.main(["--pool", "--seeds", "0", "1", "--arms", "star", "no-filter", "--out-dir", str(tmp_path),
                     "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["runs"]["1/star"]["generated_tokens_round1"] == 40
    assert report["runs"]["0/no-filter"]["pairs_or_rows"] == 3
    dev = report["paired"]["dev"]
    assert dev["star"]["n"] == 8 and dev["star"]["accuracy"] == 6 / 8
    assert dev["start"]["accuracy"] == 2 / 8
    assert dev["star"]["vs_start"]["diff"] == pytest.approx(4 / 8)
    assert dev["star"]["vs_no-filter"]["diff"] == pytest.approx(2 / 8)
    with pytest.raises(SystemExit, match="did not finish"):
        mod.main(["--pool", "--seeds", "2", "--arms", "star", "--out-dir", str(tmp_path)])
