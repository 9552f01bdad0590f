"""scripts/compare_runs.py: paired tests between training arms and the self-checker report, on run dirs
written here (no model)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_script

from selfimprove.metrics.stats import mcnemar_exact
from selfimprove.records import Completion, Step, Trace, Verdict
from selfimprove.tasks import get_task


def _load():
    return load_script("compare_runs")


def _run(path: Path, rounds: list[list[bool | None]], traces: list[Trace] = ()) -> Path:
    for r, correct in enumerate(rounds):
        d = path / f"round-{r}"
        d.mkdir(parents=True)
        rows = [Trace(example_id=f"t{i}", strategy="greedy", correct=c,
                      final_answer=None if c is None else "1")
                for i, c in enumerate(correct)]
        (d / "eval-test.jsonl").write_text("".join(json.dumps(t.to_dict()) + "\n" for t in rows))
        (d / "metrics.json").write_text(json.dumps({"data": {"rows": 7}} if r else {}))
    if traces:
        (path / f"round-{len(rounds) - 1}" / "traces.jsonl").write_text(
            "".join(json.dumps(t.to_dict()) + "\n" for t in traces))
    (path / "config.json").write_text(
        json.dumps({"task": "pal-arithmetic", "loop": {"train_split": "train"}}))
    return path


def test_arms_are_paired_with_the_control_and_their_start(tmp_path, capsys):
    start = [True, False, False, None, True, False]
    control = _run(tmp_path / "no-filter", [start, [True, False, True, None, True, False]])
    arm = _run(tmp_path / "code-star", [start, [True, True, True, True, False, False]])
    out = _load().main([str(control), str(arm), "--split", "test", "--json", str(tmp_path / "c.json")])
    assert out == 0
    rows = json.loads((tmp_path / "c.json").read_text())
    vs = rows[1]["vs_control"]
    # None (no answer) counts as wrong: control 3/6, arm 4/6; arm-only right on t1, t3; control-only on t4
    expected = mcnemar_exact(dict(enumerate([True, False, True, False, True, False])),
                             dict(enumerate([True, True, True, True, False, False])))
    assert (vs["n"], vs["a_only"], vs["b_only"]) == (6, 1, 2) and vs["p"] == expected["p_value"]
    assert abs(vs["diff"] - 1 / 6) < 1e-9 and vs["ci"][0] <= vs["diff"] <= vs["ci"][1]
    assert rows[1]["no_answer_start"] == 1 and rows[1]["no_answer_final"] == 0 and rows[1]["rows"] == 7
    assert "vs no-filter (control)" in capsys.readouterr().out


def test_self_checker_report_compares_the_models_checks_with_gold(tmp_path, capsys):
    task = get_task("pal-arithmetic")
    example = task.examples("train")[0]
    task.close()
    right, wrong = example.answer, str(int(example.answer) + 1)
    gen = Step(kind="generate", completions=(Completion("a"),) * 4, answers=(right, wrong, wrong, None),
               verdicts=(Verdict(1.0, True), Verdict(0.0, False), Verdict(0.0, False), Verdict(0.0, False)))
    checks = [Step(kind="verify-program", verdicts=(Verdict(1.0, held),)) for held in (True, True, False)]
    trace = Trace(example_id=example.id, strategy="self-code-align", steps=(gen, *checks))
    run = _run(tmp_path / "sca", [[True], [True]], [trace])
    _load().main([str(run), "--split", "test", "--json", str(tmp_path / "c.json")])
    gap = json.loads((tmp_path / "c.json").read_text())[0]["self_check"]
    assert gap == {"samples": 4, "right": 1, "checker_held": 2, "held_right": 1, "held_wrong": 1, "kept": 1,
                   "kept_right": 1}
    assert "held on wrong 1/3" in capsys.readouterr().out
