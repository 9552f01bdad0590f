"""`selfimprove analyze`: end to end on JSONL files, including malformed rows (exit 2, file:line, field)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from selfimprove.cli.main import main

T, F = True, False


def _write(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _run(capsys, *argv):
    rc = main(["analyze", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_correction_end_to_end_in_a_subprocess(tmp_path):
    # q1 (2 samples): T→T, T→F; q2 (4 samples): F→T, F→F, F→F, T→T; plus one undecided row.
    # Hand values (tests/test_metrics_correction.py): acc1 5/8, acc2 1/2, CL 0.6, CS 1/3, RSS 7/30
    rows = [{"id": "q1", "initial_correct": T, "final_correct": T},
            {"id": "q1", "initial_correct": T, "final_correct": F},
            {"id": "q2", "initial_correct": F, "final_correct": T},
            {"id": "q2", "initial_correct": F, "final_correct": F},
            {"id": "q2", "initial_correct": F, "final_correct": F},
            {"id": "q2", "initial_correct": T, "final_correct": T},
            {"id": "q2", "initial_correct": None, "final_correct": T}]
    path = _write(tmp_path, "corr.jsonl", rows)
    proc = subprocess.run([sys.executable, "-m", "selfimprove.cli.main", "analyze", "correction",
                           "--input", str(path)], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1  # one JSON object
    m = json.loads(lines[0])
    assert {"acc1", "acc2", "delta", "cl", "cs", "rss", "transitions", "n"} <= set(m)
    assert m["acc1"] == pytest.approx(0.625) and m["acc2"] == pytest.approx(0.5)
    assert m["delta"] == pytest.approx(-0.125)
    assert m["cl"] == pytest.approx(0.6) and m["cs"] == pytest.approx(1 / 3)
    assert m["rss"] == pytest.approx(7 / 30)
    assert m["transitions"] == {"cc": 2, "cw": 1, "wc": 1, "ww": 2}
    assert m["undecided"] == 1


def test_correction_with_answers_and_integer_ids(tmp_path, capsys):
    rows = [{"id": 1, "initial_correct": T, "final_correct": T, "initial_answer": "4", "final_answer": "4"},
            {"id": 2, "initial_correct": F, "final_correct": T, "initial_answer": "3", "final_answer": "5"}]
    rc, out, _ = _run(capsys, "correction", "--input", _write(tmp_path, "c.jsonl", rows))
    m = json.loads(out)
    assert rc == 0 and m["changed_answer_rate"] == 0.5 and m["cl"] == 1.0 and m["cs"] == 1.0
    # acc1 = 1/2, acc2 = 1 → RSS = (1 − 1/4) / (2·1/2·1/2) = 1.5
    assert m["rss"] == pytest.approx(1.5)


def test_calibration_end_to_end(tmp_path, capsys):
    # hand values from tests/test_metrics_calibration.py: ECE 0.31, Brier 0.2385, AUROC 0.75
    rows = [{"confidence": c, "correct": y} for c, y in
            [(0.95, T), (0.85, T), (0.85, F), (0.35, T), (0.15, F), (None, T)]]
    path = _write(tmp_path, "cal.jsonl", rows + [""])  # a blank line is skipped
    rc, out, err = _run(capsys, "calibration", "--input", path)
    assert rc == 0, err
    m = json.loads(out)
    assert {"ece", "brier", "auroc", "n"} <= set(m)
    assert m["n"] == 5 and m["n_missing"] == 1
    assert m["ece"] == pytest.approx(0.31) and m["brier"] == pytest.approx(0.2385)
    assert m["auroc"] == pytest.approx(0.75)
    rc, out, _ = _run(capsys, "calibration", "--input", path, "--bins", "2")
    assert rc == 0 and json.loads(out)["ece"] == pytest.approx(0.23)  # (2·0.25 + 0.65) / 5


@pytest.mark.parametrize("analysis, bad_row, field, words", [
    ("correction", {"id": "q3", "initial_correct": T}, "final_correct", "missing field"),
    ("correction", {"id": "q3", "initial_correct": "yes", "final_correct": T}, "initial_correct",
     'expected true/false or null, got "yes"'),
    ("correction", {"id": T, "initial_correct": T, "final_correct": T}, "id",
     "expected a string or a number"),
    ("calibration", {"confidence": 1.5, "correct": T}, "confidence", "in [0, 1], got 1.5"),
    ("calibration", {"confidence": T, "correct": T}, "confidence", "expected a number or null, got true"),
    ("calibration", {"confidence": 0.5, "correct": 1}, "correct", "expected true/false or null, got 1"),
])
def test_malformed_row_exits_2_naming_file_line_and_field(tmp_path, capsys, analysis, bad_row, field, words):
    good = ({"id": "q1", "initial_correct": T, "final_correct": F} if analysis == "correction"
            else {"confidence": 0.5, "correct": T})
    path = _write(tmp_path, "bad.jsonl", [good, good, bad_row])
    rc, out, err = _run(capsys, analysis, "--input", path)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err  # one line
    assert f"{path}:3" in err and f"field '{field}'" in err and words in err


def test_unreadable_inputs_exit_2(tmp_path, capsys):
    bad_json = _write(tmp_path, "j.jsonl", ['{"confidence": 0.5, "correct": true}', "{not json"])
    rc, _, err = _run(capsys, "calibration", "--input", bad_json)
    assert rc == 2 and f"{bad_json}:2" in err and "not valid JSON" in err
    not_object = _write(tmp_path, "l.jsonl", ["[1, 2]"])
    rc, _, err = _run(capsys, "calibration", "--input", not_object)
    assert rc == 2 and f"{not_object}:1" in err and "JSON object" in err
    rc, _, err = _run(capsys, "correction", "--input", tmp_path / "nope.jsonl")
    assert rc == 2 and "nope.jsonl" in err and "not found" in err
    empty = _write(tmp_path, "e.jsonl", [])
    rc, _, err = _run(capsys, "correction", "--input", empty)
    assert rc == 2 and "no rows" in err
    good = _write(tmp_path, "g.jsonl", [{"confidence": 0.5, "correct": True}])
    rc, _, err = _run(capsys, "calibration", "--input", good, "--bins", "0")
    assert rc == 2 and "--bins" in err


def test_answers_on_some_rows_only_is_an_error(tmp_path, capsys):
    rows = [{"id": "a", "initial_correct": T, "final_correct": T, "initial_answer": "1", "final_answer": "1"},
            {"id": "b", "initial_correct": F, "final_correct": T, "initial_answer": "2"}]
    path = _write(tmp_path, "p.jsonl", rows)
    rc, _, err = _run(capsys, "correction", "--input", path)
    assert rc == 2 and f"{path}:2" in err and "field 'final_answer'" in err


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "correction", "--help"])
    assert exc.value.code == 0
    assert "selfimprove analyze correction --input" in capsys.readouterr().out


def test_analyze_reads_runs_export_and_agrees_with_the_report(tmp_path, capsys):
    """One run, two readers: `analyze` on the `runs export` file gives the numbers the HTML report shows, with
    unparseable answers (here: solutions cut at max_tokens=36) counted wrong in both."""
    import re

    store, report, export = tmp_path / "runs.db", tmp_path / "r.html", tmp_path / "run.jsonl"
    assert main(["eval", "--model", "scripted:error_rate=0.4", "--task", "arithmetic", "--limit", "40",
                 "--strategy", "self-correct:max_tokens=36", "--strategy",
                 "self-consistency:n=4,max_tokens=36",
                 "--store", str(store), "--report", str(report)]) == 0
    run_id = re.search(r"stored as run (\S+)", capsys.readouterr().err).group(1)
    assert main(["runs", "--store", str(store), "export", run_id, "--out", str(export)]) == 0
    capsys.readouterr()

    rc, out, err = _run(capsys, "correction", "--input", export)
    assert rc == 2 and "choose one with --strategy" in err  # two strategies in the export: never pooled
    rc, out, _ = _run(capsys, "correction", "--input", export, "--strategy", "self-correct")
    assert rc == 0
    corr = json.loads(out)
    assert corr["unparsed_as_wrong"] and corr["unparsed_initial"] + corr["unparsed_final"] > 0
    rc, out, _ = _run(capsys, "calibration", "--input", export, "--strategy",
                      "self-consistency:n=4,max_tokens=36")
    calib = json.loads(out)

    doc = report.read_text()

    def row(section: str, label: str) -> list[str]:
        part = doc.split(f"<h2>{section}</h2>")[1].split("<h2>")[0]
        cells = next(r for r in re.findall(r"<tr>(.*?)</tr>", part) if r.startswith(f"<td>{label}</td>"))
        return re.findall(r"<td>(.*?)</td>", cells)

    pct = lambda x: f"{100 * x:.1f}"  # the report's formatting
    got = row("Correction", "self-correct:max_tokens=36")
    t = corr["transitions"]
    assert got[1:4] == [pct(corr["acc1"]), pct(corr["acc2"]), pct(corr["delta"])]
    assert got[7:11] == [str(t[k]) for k in ("cc", "cw", "wc", "ww")]
    assert got[11] == f"{corr['unparsed_initial']}/{corr['unparsed_final']}"
    got = row("Calibration", "self-consistency:n=4,max_tokens=36")
    assert got[1:3] == [str(calib["n"]), str(calib["n_missing"])] and calib["n_missing"] == 0
    assert got[3] == f"{calib['ece']:.3f}"
