"""Every bad input exits 2 with one line naming the file and line, the flag or the run id, and the field; no
traceback, and no run is created or left 'running' / 'failed' by it. A parametrised matrix of bad inputs (the
cases of the failure issue and more), run in-process, plus a property test: random JSON values and random
bytes in every field of each file format give exit 2 or a valid run, never a traceback."""

from __future__ import annotations

import json
import random
import sqlite3

import pytest

from selfimprove.cli.main import main
from selfimprove.store.runs import RunStore

ROWS = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(3)]


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A home, a good data file, a store holding one done eval run and one train run, and bad files."""
    monkeypatch.setenv("SELFIMPROVE_HOME", str(tmp_path / "home"))
    d = {"tmp": str(tmp_path), "data": write_jsonl(tmp_path / "qa.jsonl", ROWS)}
    store = RunStore(tmp_path / "runs.db")
    d["store"] = str(store.path)
    d["eval_run"] = store.create_run("eval", {"model": "scripted", "task": "jsonl", "data": d["data"],
                                              "split": "test", "limit": None, "strategies": ["greedy"],
                                              "seed": 0, "chunk": 16})
    store.set_status(d["eval_run"], "done")
    run_dir = tmp_path / "train-run"
    d["train_run"] = store.create_run("train",
                                      {"model": "tiny", "task": "arithmetic", "run_dir": str(run_dir)})
    store.set_status(d["train_run"], "done")
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({
        "command": "train", "model": "tiny", "model_path": str(run_dir / "none"), "task": "arithmetic",
        "data": None, "run_id": d["train_run"], "run_dir": str(run_dir),
        "loop": {"method": "lmsi", "rounds": 2, "k": 8, "temperature": 0.8, "lr": 3e-5}}))
    store.close()
    files = {
        "nonutf8": b'{"id": "a", "question": "1+1", "answer": "2"}\n{"id": "b", "question": "\xff\xfe", '
                   b'"answer": "3"}\n',
        "comp_nonutf8": b'{"id": "a", "completion": "2", "question": "1+1", "answer": "#### 2"}\n'
                        b'{"id": "b", "completion": "\xff", "question": "1+1", "answer": "#### 2"}\n',
        "badjson": b'{"id": "a", "question": "1+1", "answer": "2"}\n{"id": "b", "question": \n',
        "array": b'[1, 2, 3]\n',
        "empty": b"",
        "junkdb": b"this is not a database at all" * 40,
        "nulls": b"\x00" * 200,
        "deep": b"[" * 100000 + b"\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        d[name] = str(tmp_path / name)
    rows = {
        "dupes": ROWS + [ROWS[0]],
        "noquestion": [{"id": "a", "answer": "2"}],
        "intquestion": [{"id": "a", "question": 7, "answer": "2"}],
        "listanswer": [{"id": "a", "question": "1+1", "answer": [2]}],
        "noanswer": [{"id": "a", "question": "1+1"}],
        "wordanswer": [{"id": "a", "question": "1+1", "answer": "two"}],
        "nullanswer": [{"id": "a", "question": "1+1", "answer": None}],
        "mc_bad": [{"id": "a", "question": "q", "choices": ["x"], "answer": 0}],
        "mc_index": [{"id": "a", "question": "q", "choices": ["x", "y"], "answer": 5}],
        "mc_str": [{"id": "a", "question": "q", "choices": "xy", "answer": 0}],
        "boolq_bad": [{"id": "a", "question": "q", "answer": "maybe"}],
        "gsm_nonum": [{"id": "a", "question": "q", "answer": "no number here"}],
        "comp_ok": [{"id": "a", "completion": "2", "question": "1+1", "answer": "#### 2"}],
        "comp_nocomp": [{"id": "a", "question": "1+1", "answer": "#### 2"}],
        "comp_intcomp": [{"id": "a", "completion": 2, "question": "1+1", "answer": "#### 2"}],
        "comp_dupe": [{"id": "a", "completion": "2", "question": "1+1", "answer": "#### 2"}] * 2,
        "comp_listid": [{"id": [1], "completion": "2", "question": "1+1", "answer": "#### 2"}],
        "corr_bad": [{"id": "a", "initial_correct": "yes", "final_correct": True}],
        "calib_bad": [{"confidence": 1.5, "correct": True}],
        "calib_nan": [{"confidence": "NaN", "correct": True}],
    }
    for name, content in rows.items():
        d[name] = write_jsonl(tmp_path / f"{name}.jsonl", content)
    (tmp_path / "calib_nanlit.jsonl").write_text('{"confidence": NaN, "correct": true}\n')
    d["calib_nanlit"] = str(tmp_path / "calib_nanlit.jsonl")
    recipes = {"r_two": 'rounds = "two"\n', "r_unknown": "bogus = 1\n", "r_toml": "rounds = \n",
               "r_model": "model = 3\ntask = \"arithmetic\"\n", "r_nan": "lr = nan\n",
               "r_list": "k = [1, 2]\n",
               "r_neg": "rounds = -1\n", "r_bool": "rounds = true\n", "r_temp": "temperature = -0.5\n"}
    for name, text in recipes.items():
        (tmp_path / f"{name}.toml").write_text(text)
        d[name] = str(tmp_path / f"{name}.toml")
    (tmp_path / "adir").mkdir()
    d["adir"] = str(tmp_path / "adir")
    d["afile"] = d["array"]
    foreign = sqlite3.connect(tmp_path / "foreign.db")
    foreign.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    foreign.commit()
    foreign.close()
    d["foreign"] = str(tmp_path / "foreign.db")
    newer = sqlite3.connect(tmp_path / "newer.db")
    newer.execute("CREATE TABLE schema_version (version INTEGER)")
    newer.execute("INSERT INTO schema_version VALUES (999)")
    newer.commit()
    newer.close()
    d["newer"] = str(tmp_path / "newer.db")
    good = (tmp_path / "runs.db").read_bytes()
    (tmp_path / "truncated.db").write_bytes(good[:100] + b"\x00" * 50)
    d["truncated"] = str(tmp_path / "truncated.db")
    return d


E = "eval --model scripted --task jsonl --data {data} --store {store}"
"""A good eval command line; the cases add one bad thing to it."""
T = "train --model /nonexistent-model --task arithmetic --store {store}"
"""A train command line whose every case is refused before the model is looked at."""

CASES = [
    # flags with out-of-range, non-finite or unreadable numbers
    ("limit-negative", E + " --limit -1", "--limit"),
    ("limit-zero", E + " --limit 0", "--limit"),
    ("limit-word", E + " --limit ten", "--limit"),
    ("chunk-zero", E + " --chunk 0", "--chunk"),
    ("chunk-negative", E + " --chunk -4", "--chunk"),
    ("seed-float", E + " --seed 1.5", "--seed"),
    ("max-tokens-0", E + " --strategy greedy:max_tokens=0", "max_tokens"),
    ("max-tokens-neg", E + " --strategy greedy:max_tokens=-5", "max_tokens"),
    ("temperature-neg", E + " --strategy sample:temperature=-1", "temperature"),
    ("temperature-nan", E + " --strategy sample:temperature=nan", "temperature"),
    ("temperature-inf", E + " --strategy sample:temperature=inf", "temperature"),
    ("temperature-word", E + " --strategy sample:temperature=hot", "temperature"),
    ("top-p-2", E + " --strategy sample:top_p=2", "top_p"),
    ("top-p-0", E + " --strategy sample:top_p=0", "top_p"),
    ("top-p-nan", E + " --strategy sample:top_p=nan", "top_p"),
    ("n-0", E + " --strategy sample:n=0", "n"),
    ("sc-n-0", E + " --strategy self-consistency:n=0", "n"),
    ("sc-n-neg", E + " --strategy self-consistency:n=-3", "n"),
    ("seed-word", E + " --strategy sample:seed=x", "seed"),
    ("strategy-unknown", E + " --strategy nosuch", "nosuch"),
    ("strategy-option-unknown", E + " --strategy greedy:bogus=1", "bogus"),
    ("strategy-option-noeq", E + " --strategy greedy:max_tokens", "max_tokens"),
    ("strategy-needs-code-task", E + " --strategy self-debug", "code task"),
    ("second-strategy-needs-code-task", E + " --strategy greedy --strategy self-debug", "code task"),
    ("self-debug-feedback-on-pal", ("eval --model scripted --task pal-arithmetic --split dev --strategy "
     "self-debug:feedback=self --store {store}"), "feedback"),
    # models
    ("scripted-rate", "eval --model scripted:error_rate=2 --task jsonl --data {data} --store {store}",
     "error_rate"),
    ("scripted-option", "eval --model scripted:bogus=1 --task jsonl --data {data} --store {store}", "bogus"),
    ("scripted-word", "eval --model scripted:error_rate=x --task jsonl --data {data} --store {store}",
     "error_rate"),
    ("openai-scheme", "eval --model openai:ftp://host/v1 --task jsonl --data {data} --store {store}",
     "base_urls"),
    ("openai-empty", "eval --model openai: --task jsonl --data {data} --store {store}", "model"),
    ("openai-option", ("eval --model openai:http://127.0.0.1:9/v1,timout=3 --task jsonl --data {data} "
     "--store {store}"), "timout"),
    ("openai-timeout-0", ("eval --model openai:http://127.0.0.1:9/v1,timeout=0 --task jsonl --data {data} "
     "--store {store}"), "timeout"),
    ("openai-timeout-nan", ("eval --model openai:http://127.0.0.1:9/v1,timeout=nan --task jsonl "
     "--data {data} --store {store}"), "timeout"),
    ("openai-retries-neg", ("eval --model openai:http://127.0.0.1:9/v1,retries=-1 --task jsonl --data {data} "
     "--store {store}"), "retries"),
    ("model-missing-dir", "eval --model {tmp}/no-such-model --task jsonl --data {data} --store {store}",
     "no-such-model"),
    ("model-is-file", "eval --model {array} --task jsonl --data {data} --store {store}", "array"),
    # tasks and their data files
    ("task-unknown", "eval --model scripted --task nosuch --store {store}", "nosuch"),
    ("arithmetic-data", "eval --model scripted --task arithmetic --data {data} --store {store}", "data"),
    ("jsonl-no-data", "eval --model scripted --task jsonl --store {store}", "--data"),
    ("jsonl-kind", "eval --model scripted --task jsonl:kind=bogus --data {data} --store {store}", "kind"),
    ("jsonl-option", "eval --model scripted --task jsonl:bogus=1 --data {data} --store {store}", "bogus"),
    ("arithmetic-option", "eval --model scripted --task arithmetic:digits=x --store {store}", "digits"),
    ("data-missing", "eval --model scripted --task jsonl --data {tmp}/nope.jsonl --store {store}",
     "nope.jsonl"),
    ("data-dir", "eval --model scripted --task jsonl --data {adir} --store {store}", "adir"),
    ("data-nonutf8", "eval --model scripted --task jsonl --data {nonutf8} --store {store}", "nonutf8:2"),
    ("data-badjson", "eval --model scripted --task jsonl --data {badjson} --store {store}", "badjson:2"),
    ("data-array", "eval --model scripted --task jsonl --data {array} --store {store}", "array:1"),
    ("data-empty", "eval --model scripted --task jsonl --data {empty} --store {store}", "no examples"),
    ("data-nulls", "eval --model scripted --task jsonl --data {nulls} --store {store}", "nulls:1"),
    ("data-deep", "eval --model scripted --task jsonl --data {deep} --store {store}", "deep:1"),
    ("data-dupes", "eval --model scripted --task jsonl --data {dupes} --store {store}", "q0"),
    ("data-noquestion", "eval --model scripted --task jsonl --data {noquestion} --store {store}", "question"),
    ("data-intquestion", "eval --model scripted --task jsonl --data {intquestion} --store {store}",
     "question"),
    ("data-listanswer", "eval --model scripted --task jsonl --data {listanswer} --store {store}", "answer"),
    ("data-noanswer", "eval --model scripted --task jsonl --data {noanswer} --store {store}", "answer"),
    ("data-wordanswer", "eval --model scripted --task jsonl --data {wordanswer} --store {store}", "answer"),
    ("data-nullanswer", "eval --model scripted --task jsonl --data {nullanswer} --store {store}", "answer"),
    ("gsm8k-nonum", "eval --model scripted --task gsm8k --data {gsm_nonum} --store {store}", "answer"),
    ("gsm8k-nonutf8", "eval --model scripted --task gsm8k --data {nonutf8} --store {store}", "nonutf8:2"),
    ("mc-one-choice", "eval --model scripted --task multiple-choice --data {mc_bad} --store {store}",
     "choices"),
    ("mc-index", "eval --model scripted --task multiple-choice --data {mc_index} --store {store}", "answer"),
    ("mc-str-choices", "eval --model scripted --task multiple-choice --data {mc_str} --store {store}",
     "choices"),
    ("boolq-answer", "eval --model scripted --task boolq --data {boolq_bad} --store {store}", "answer"),
    # output paths
    ("report-missing-folder", E + " --report {tmp}/no/such/dir/r.html", "--report"),
    ("report-is-dir", E + " --report {adir}", "--report"),
    ("export-missing-folder", "runs --store {store} export {eval_run} --out {tmp}/no/dir/x.jsonl", "--out"),
    ("export-is-dir", "runs --store {store} export {eval_run} --out {adir}", "--out"),
    # the store
    ("store-dir", "eval --model scripted --task jsonl --data {data} --store {adir}", "adir"),
    ("store-junk", "eval --model scripted --task jsonl --data {data} --store {junkdb}", "junkdb"),
    ("store-nulls", "eval --model scripted --task jsonl --data {data} --store {nulls}", "nulls"),
    ("store-truncated", "eval --model scripted --task jsonl --data {data} --store {truncated}", "truncated"),
    ("store-foreign", "eval --model scripted --task jsonl --data {data} --store {foreign}", "foreign"),
    ("store-newer", "eval --model scripted --task jsonl --data {data} --store {newer}", "newer"),
    ("store-parent-file", "eval --model scripted --task jsonl --data {data} --store {array}/runs.db",
     "array"),
    ("list-junk", "runs --store {junkdb} list", "junkdb"),
    ("list-foreign", "runs --store {foreign} list", "foreign"),
    ("list-missing", "runs --store {tmp}/none.db list", "none.db"),
    ("list-dir", "runs --store {adir} list", "adir"),
    ("show-unknown", "runs --store {store} show 20990101-000000-abcdef", "20990101-000000-abcdef"),
    ("export-unknown", "runs --store {store} export nope", "nope"),
    # resume
    ("resume-unknown", "eval --resume 20990101-000000-abcdef --store {store}", "20990101-000000-abcdef"),
    ("resume-train-run", "eval --resume {train_run} --store {store}", "train"),
    ("resume-other-model", "eval --resume {eval_run} --store {store} --model scripted:error_rate=0.5",
     "--model"),
    ("resume-other-strategy", "eval --resume {eval_run} --store {store} --strategy sample", "--strategy"),
    ("resume-other-limit", "eval --resume {eval_run} --store {store} --limit 2", "--limit"),
    ("resume-other-split", "eval --resume {eval_run} --store {store} --split dev", "--split"),
    ("resume-other-task", "eval --resume {eval_run} --store {store} --task gsm8k", "--task"),
    ("resume-other-seed", "eval --resume {eval_run} --store {store} --seed 3", "--seed"),
    ("resume-other-chunk", "eval --resume {eval_run} --store {store} --chunk 3", "--chunk"),
    ("train-resume-eval-run", "train --resume {eval_run} --store {store}", "eval"),
    ("train-resume-fewer-rounds", "train --resume {train_run} --store {store} --rounds 1", "--rounds"),
    ("train-resume-other-method", "train --resume {train_run} --store {store} --method star", "--method"),
    ("train-resume-other-n", "train --resume {train_run} --store {store} --n 4", "--n"),
    ("train-resume-other-lr", "train --resume {train_run} --store {store} --lr 0.1", "lr"),
    ("train-resume-model", "train --resume {train_run} --store {store} --model tiny", "--model"),
    ("train-resume-unknown", "train --resume nope --store {store}", "nope"),
    # score and analyze
    ("score-dir", "score --task gsm8k --completions {adir}", "adir"),
    ("score-missing", "score --task gsm8k --completions {tmp}/none.jsonl", "none.jsonl"),
    ("score-nonutf8", "score --task gsm8k --completions {comp_nonutf8}", "comp_nonutf8:2"),
    ("score-nocompletion", "score --task gsm8k --completions {comp_nocomp}", "completion"),
    ("score-intcompletion", "score --task gsm8k --completions {comp_intcomp}", "completion"),
    ("score-dupe", "score --task gsm8k --completions {comp_dupe}", "id"),
    ("score-listid", "score --task gsm8k --completions {comp_listid}", "id"),
    ("score-empty", "score --task gsm8k --completions {empty}", "empty"),
    ("score-out-missing-folder", "score --task gsm8k --completions {comp_ok} --out {tmp}/no/dir/s.jsonl",
     "--out"),
    ("score-task-unknown", "score --task nosuch --completions {comp_ok}", "nosuch"),
    ("analyze-correction-type", "analyze correction --input {corr_bad}", "initial_correct"),
    ("analyze-calibration-range", "analyze calibration --input {calib_bad}", "confidence"),
    ("analyze-calibration-str", "analyze calibration --input {calib_nan}", "confidence"),
    ("analyze-calibration-nan", "analyze calibration --input {calib_nanlit}", "confidence"),
    ("analyze-nonutf8", "analyze calibration --input {nonutf8}", "nonutf8"),
    ("analyze-bins", "analyze calibration --input {calib_bad} --bins 0", "--bins"),
    # train flags and recipes
    ("train-batch-size-0", T + " --batch-size 0", "--batch-size must be"),
    ("train-rounds-0", T + " --rounds 0", "rounds"),
    ("train-k-0", T + " --k 0", "--n/--k must be"),
    ("train-temperature-nan", T + " --temperature nan", "temperature"),
    ("train-temperature-0", T + " --temperature 0", "temperature"),
    ("train-top-p-2", T + " --top-p 2", "--top-p must be"),
    ("train-threshold-2", T + " --threshold 2", "threshold"),
    ("train-lr-neg", T + " --lr -1", "lr"),
    ("train-lr-inf", T + " --lr inf", "lr"),
    ("train-max-steps-0", T + " --max-steps 0", "--max-steps must be"),
    ("train-scheduler", T + " --scheduler bogus", "scheduler"),
    ("train-eval-limit-0", T + " --eval-limit 0", "--eval-limit must be"),
    ("train-train-limit-neg", T + " --train-limit -1", "--train-limit must be"),
    ("train-method", T + " --method bogus", "--method"),
    ("train-epochs-0", T + " --epochs 0", "epochs"),
    ("train-min-delta-nan", T + " --min-delta nan", "min_delta"),
    ("train-out-file", T + " --out {array}", "--out"),
    ("train-recipe-two",
     "train --recipe {r_two} --model /nonexistent-model --task arithmetic --store {store}",
     "r_two.toml, field 'rounds'"),
    ("train-recipe-unknown", "train --recipe {r_unknown} --model /m --task arithmetic --store {store}",
     "bogus"),
    ("train-recipe-toml", "train --recipe {r_toml} --model /m --task arithmetic --store {store}", "r_toml"),
    ("train-recipe-model-int", "train --recipe {r_model} --store {store}", "model"),
    ("train-recipe-nan", "train --recipe {r_nan} --model /m --task arithmetic --store {store}", "lr"),
    ("train-recipe-list", "train --recipe {r_list} --model /m --task arithmetic --store {store}",
     "field 'n'"),
    ("train-recipe-neg", "train --recipe {r_neg} --model /m --task arithmetic --store {store}", "rounds"),
    ("train-recipe-bool", "train --recipe {r_bool} --model /m --task arithmetic --store {store}", "rounds"),
    ("train-recipe-temp", "train --recipe {r_temp} --model /m --task arithmetic --store {store}",
     "temperature"),
    ("train-recipe-missing", "train --recipe {tmp}/none.toml --store {store}", "none.toml"),
    ("train-recipe-nonutf8", "train --recipe {nonutf8} --store {store}", "nonutf8"),
    ("train-no-model", "train --task arithmetic --store {store}", "--model"),
    ("eval-no-model", "eval --task arithmetic --store {store}", "--model"),
    ("train-store-junk", "train --model /m --task arithmetic --store {junkdb}", "junkdb"),
]


def _runs(store: str) -> list[tuple]:
    db = sqlite3.connect(store)
    try:
        return db.execute("SELECT id, status FROM runs ORDER BY id").fetchall()
    finally:
        db.close()


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """main() in-process; argparse's exits become return codes; any other exception fails the test."""
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 2
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_no_run(case, env, capsys):
    _, template, needle = case
    before = _runs(env["store"])
    rc, out, err = run_cli(template.format(**env).split(), capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, (rc, out[-500:], err[-500:])
    assert len(lines) == 1, err
    assert "Traceback" not in err + out
    assert needle in lines[0], lines[0]
    assert _runs(env["store"]) == before  # nothing created, nothing left running or failed


def test_the_matrix_is_broad():
    assert len(CASES) >= 100


@pytest.mark.parametrize("command", ["eval --model scripted --task arithmetic", "runs list",
                                     "train --model /m --task arithmetic"])
def test_a_home_that_is_a_file_exits_2(command, tmp_path, monkeypatch, capsys):
    (tmp_path / "home").write_text("not a folder")
    monkeypatch.setenv("SELFIMPROVE_HOME", str(tmp_path / "home"))
    rc, _out, err = run_cli(command.split(), capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "home" in err, err


def test_debug_shows_the_traceback(env, capsys):
    with pytest.raises(Exception, match="max_tokens"):
        main(["--debug", *(E + " --strategy greedy:max_tokens=0").format(**env).split()])


def test_a_read_only_store_can_be_listed_shown_and_exported(env, capsys, tmp_path):
    """A read open writes nothing: the store's bytes are unchanged and no lock file appears (SQLite itself may
    open the -wal / -shm files beside a WAL store where the folder allows it; in a read-only folder the store
    is opened immutable instead)."""
    import os

    assert main(
        ("eval --model scripted --task jsonl --data {data} --store {tmp}/ro.db").format(**env).split()) == 0
    store = tmp_path / "ro.db"
    run_id = _runs(str(store))[0][0]
    import gc

    gc.collect()  # the in-process eval's connection closes: its WAL is checkpointed into the file
    before = store.read_bytes()
    listing = set(os.listdir(tmp_path))
    capsys.readouterr()
    for argv in (["list"], ["show", run_id], ["export", run_id]):
        assert main(["runs", "--store", str(store), *argv]) == 0
    out = capsys.readouterr().out
    assert run_id in out and '"example_id": "q0"' in out
    assert store.read_bytes() == before
    assert set(os.listdir(tmp_path)) - {"ro.db-wal", "ro.db-shm"} == listing


# ---- property test: random values in every field of every file format ------------------------------------

VALUES = [None, True, False, 0, -1, 1, 2**70, 1.5, -0.0, 1e308, "", " ", "2", "#### 2", "nan", "NaN", "∞",
          "\u0000", "\ud7ff", "x" * 5000, [], [1, "a"], {}, {"a": 1}, "q0", "A", "yes"]
FORMATS = {
    "jsonl": ("eval --model scripted --task jsonl --data {path} --store {store} --limit 3",
              {"id": "q0", "question": "What is 1 + 1?", "answer": "2"}),
    "gsm8k": ("eval --model scripted --task gsm8k --data {path} --store {store} --limit 3",
              {"id": "q0", "question": "What is 1 + 1?", "answer": "1 + 1 = 2\n#### 2"}),
    "multiple-choice": (("eval --model scripted --task multiple-choice --data {path} --store {store} "
                         "--limit 3"),
                        {"id": "q0", "question": "1 + 1?", "choices": ["1", "2"], "answer": 1}),
    "boolq": ("eval --model scripted --task boolq --data {path} --store {store} --limit 3",
              {"id": "q0", "question": "is 2 even?", "answer": True, "passage": "2 = 2 x 1"}),
    "score": ("score --task gsm8k --completions {path}",
              {"id": "q0", "completion": "2", "question": "1 + 1?", "answer": "#### 2"}),
    "correction": ("analyze correction --input {path}", {"id": "q0", "initial_correct": True,
                                                         "final_correct": False}),
    "calibration": ("analyze calibration --input {path}", {"confidence": 0.5, "correct": True}),
}


def _mutations(rng: random.Random, good: dict, count: int):
    """``count`` files: a good row and a second row with one field replaced by a random value, dropped, or
    the whole line replaced by random bytes."""
    for _ in range(count):
        bad = dict(good, id="q1") if "id" in good else dict(good)
        kind = rng.random()
        if kind < 0.15:
            yield json.dumps(good).encode() + b"\n" + bytes(rng.randrange(256)
                                                            for _ in range(rng.randrange(1, 40)))
            continue
        field = rng.choice(sorted(bad))
        if kind < 0.25:
            del bad[field]
        else:
            bad[field] = rng.choice(VALUES)
        yield (json.dumps(good) + "\n" + json.dumps(bad, ensure_ascii=rng.random() < 0.5) + "\n").encode(
            "utf-8", "surrogatepass")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_random_field_values_give_exit_2_or_a_valid_run(fmt, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SELFIMPROVE_HOME", str(tmp_path / "home"))
    template, good = FORMATS[fmt]
    rng = random.Random(f"bad-inputs-{fmt}")
    store = tmp_path / "runs.db"
    outcomes = {0: 0, 2: 0}
    for i, content in enumerate(_mutations(rng, good, 20)):
        path = tmp_path / f"case{i}.jsonl"
        path.write_bytes(content)
        rc, _out, err = run_cli(template.format(path=path, store=store).split(), capsys)
        assert rc in (0, 2), (content[:200], rc, err[-300:])
        assert "Traceback" not in err
        if rc == 2:
            assert len([x for x in err.splitlines() if x.strip()]) == 1 and str(path) in err, err
        outcomes[rc] += 1
    if store.exists():
        assert {s for _, s in _runs(str(store))} <= {"done"}  # every run that started, finished
    assert outcomes[2] > 0  # the mutations did hit the validation


def test_random_recipe_values_give_exit_2_or_a_valid_config(tmp_path, monkeypatch, capsys):
    """Each LoopConfig field of a recipe gets a random TOML value: build_config accepts it (a valid config)
    or refuses it with one line naming the recipe and the field; never a traceback. (Runs stop before the
    model is resolved: ``--model`` names a missing directory.)"""
    import dataclasses

    from selfimprove.training.config import LoopConfig

    monkeypatch.setenv("SELFIMPROVE_HOME", str(tmp_path / "home"))
    toml_values = ["0", "-1", "1", "2.5", "nan", "inf", "true", '"two"', '""', "[1, 2]", '["a"]', "{a = 1}",
                   "1e400", '"lmsi"', "0.0"]
    rng = random.Random("recipes")
    fields = [f.name for f in dataclasses.fields(LoopConfig)]
    refused = 0
    for i, name in enumerate(fields):
        path = tmp_path / f"r{i}.toml"
        path.write_text(f"{name} = {rng.choice(toml_values)}\n")
        rc, _out, err = run_cli(["train", "--recipe", str(path), "--model", str(tmp_path / "none"), "--task",
                                "arithmetic", "--store", str(tmp_path / "runs.db"), "--out",
                                str(tmp_path / f"out{i}")], capsys)
        assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        refused += str(path) in err
    assert refused > len(fields) // 3
    assert not (tmp_path / "runs.db").exists() or _runs(str(tmp_path / "runs.db")) == []
