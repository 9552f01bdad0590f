"""scripts/lr_grid.py: one SFT call per (row set, LR:STEPS cell) from the same start, scored greedily and
paired against the start (exact McNemar) — on the micro model, a handful of rows and examples."""

from __future__ import annotations

import json

from conftest import load_script

from selfimprove.metrics.stats import mcnemar_exact
from selfimprove.tasks import get_task


def test_grid_cells_are_scored_and_paired_against_the_start(micro_model_dir, tmp_path, capsys):
    task = get_task("arithmetic")
    run = tmp_path / "star"
    (run / "round-1").mkdir(parents=True)
    rows = [{"prompt": task.prompt(e), "completion": " " + e.answer} for e in task.examples("train")[:8]]
    (run / "round-1/rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "grid.json"
    load_script("lr_grid").main([str(run), "--model", str(micro_model_dir), "--grid", "1e-3:2", "1e-5:1",
                                 "--splits", "dev", "--limit", "6", "--json", str(out)])
    printed = capsys.readouterr().out
    results = json.loads(out.read_text())
    assert set(results) == {"start", "star 0.001:2", "star 1e-05:1"}
    start = results["start"]["dev"]
    assert start["n"] == 6 and len(start["by_id"]) == 6
    for cell in ("star 0.001:2", "star 1e-05:1"):
        dev = results[cell]["dev"]
        assert results[cell]["rows"] == 8 and dev["n"] == 6
        assert dev["p_vs_start"] == mcnemar_exact(start["by_id"], dev["by_id"])["p_value"]
        assert f"{100 * dev['accuracy']:.1f} (p {dev['p_vs_start']:.2g})" in printed
    assert "| `star` (8 rows) |" in printed
