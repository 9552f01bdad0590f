"""The store's health (numbered migrations, old stores upgraded, one process per run id) and secrets: URL
credentials and API keys never reach the store, the report, logs or the console."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import subprocess
import sys
import uuid

import pytest
from fake_openai_server import FakeOpenAIServer

from selfimprove.cli.main import main
from selfimprove.errors import UserError
from selfimprove.store import migrations
from selfimprove.store.runs import RunStore

OLD_SCHEMA = """
CREATE TABLE runs (id TEXT PRIMARY KEY, command TEXT NOT NULL, config TEXT NOT NULL, seed INTEGER,
    version TEXT NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE traces (run_id TEXT NOT NULL, scope TEXT NOT NULL, example_id TEXT NOT NULL,
    position INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run_id, scope, example_id));
CREATE TABLE metrics (run_id TEXT NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, scope, name));
CREATE TABLE cache (key TEXT PRIMARY KEY, data TEXT NOT NULL);
INSERT INTO runs VALUES ('old-run', 'eval', '{"model": "scripted"}', 0, '0.0.1', 'done', '2026-01-01',
    '2026-01-01');
INSERT INTO runs VALUES ('old-url', 'eval', '{"model": "openai:http://bob:hunter2@h:8000/v1@m"}', 0, '0.0.1',
    'done', '2026-01-01', '2026-01-01');
"""
"""A store as the first release wrote it: the tables, no schema_version."""


def test_an_old_store_upgrades_in_place_and_keeps_its_runs(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.close()
    store = RunStore(path)
    assert migrations.version(store.db) == migrations.LATEST == len(migrations.MIGRATIONS) >= 4
    assert store.get_run("old-run")["config"] == {"model": "scripted"}
    indexes = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "runs_by_status" in indexes  # migration 2 ran
    assert store.get_run("old-url")["config"]["model"] == "openai:http://***@h:8000/v1@m"  # and 4
    store.close()
    assert migrations.version(sqlite3.connect(path)) == migrations.LATEST  # and stays upgraded
    fresh = RunStore(tmp_path / "new.db")
    assert migrations.version(fresh.db) == migrations.LATEST


def test_a_newer_or_foreign_store_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "newer.db"
    RunStore(path).db.execute("UPDATE schema_version SET version = ?", (migrations.LATEST + 1,))
    with pytest.raises(UserError, match=rf"newer.db.*schema version {migrations.LATEST + 1}"):
        RunStore(path)
    with pytest.raises(UserError, match="newer.db"):
        RunStore(path, readonly=True)


def test_one_process_per_run_id(tmp_path):
    path = tmp_path / "runs.db"
    first = RunStore(path)
    run_id = first.create_run("eval", {})
    first.lock_run(run_id)
    code = ("import sys; from selfimprove.store.runs import RunStore\n"
            "from selfimprove.errors import UserError\n"
            f"s = RunStore({str(path)!r})\n"
            f"try:\n    s.lock_run({run_id!r})\nexcept UserError as e:\n    print(e); sys.exit(2)\n")
    other = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                           timeout=60)
    assert other.returncode == 2 and f"run {run_id} is in use by pid" in other.stdout, other
    second = RunStore(path)  # in this process too (a second open of the lock file)
    with pytest.raises(UserError, match="in use"):
        second.lock_run(run_id)
    first.close()  # released: the next process may take it
    second.lock_run(run_id)
    second.close()


def test_a_second_resume_of_a_running_run_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SELFIMPROVE_HOME", str(tmp_path))
    data = tmp_path / "qa.jsonl"
    data.write_text(json.dumps({"id": "a", "question": "1 + 1", "answer": "2"}) + "\n")
    store = tmp_path / "runs.db"
    assert main(
        ["eval", "--model", "scripted", "--task", "jsonl", "--data", str(data), "--store", str(store)]) == 0
    run_id = sqlite3.connect(store).execute("SELECT id FROM runs").fetchone()[0]
    holder = RunStore(store)
    holder.lock_run(run_id)  # as a still-running process would
    capsys.readouterr()
    assert main(["eval", "--resume", run_id, "--store", str(store)]) == 2
    assert f"run {run_id} is in use" in capsys.readouterr().err
    holder.close()
    assert main(["eval", "--resume", run_id, "--store", str(store)]) == 0


def test_canary_credentials_never_leave_the_process(tmp_path, monkeypatch, capsys, caplog):
    """A password in the model URL and an API key in the environment, through successes, failures (a server
    that echoes the Authorization header), a report, runs show / export and a resume: neither appears, plain
    or base64-encoded, in any file the run wrote, in stdout / stderr or in the logs."""
    password, key = f"pw{uuid.uuid4().hex}", f"sk-canary-{uuid.uuid4().hex}"
    secrets = [password, key, base64.b64encode(f"user:{password}".encode()).decode(),
               base64.b64encode(password.encode()).decode()[:16]]
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("SELFIMPROVE_HOME", str(tmp_path / "home"))
    caplog.set_level(logging.DEBUG)
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"id": f"e{i}", "question": f"q{i}", "answer": str(i)}) + "\n"
                            for i in range(4)))
    store, report = tmp_path / "runs.db", tmp_path / "report.html"
    with FakeOpenAIServer() as server:
        url = server.url.replace("http://", f"http://user:{password}@")
        spec = f"openai:{url}@fake-model,retries=1,timeout=5"
        server.reset(script=["echo_auth", 500, "reset", "echo_auth", 401, "echo_auth"] * 3)
        args = ["eval", "--model", spec, "--task", "jsonl", "--data", str(data), "--store", str(store)]
        assert main([*args, "--report", str(report)]) == 3  # some requests failed: incomplete
        run_id = sqlite3.connect(store).execute("SELECT id FROM runs").fetchone()[0]
        stored_model = RunStore(store, readonly=True).get_run(run_id)["config"]["model"]
        assert stored_model == spec.replace(f"user:{password}@", "***@")
        assert main(["eval", "--resume", run_id, "--store", str(store)]) == 2  # the password is not stored
        assert "pass the same --model" in capsys.readouterr().err
        server.reset()
        assert main(["eval", "--resume", run_id, "--store", str(store), "--model", spec]) == 0
        sent = {r["authorization"] for r in server.requests}  # credentials were sent (httpx: the URL's, as
        assert sent and all(a and password not in a for a in sent)  # Basic auth, over the bearer key)
    for argv in (["show", run_id], ["export", run_id, "--out", str(tmp_path / "export.jsonl")], ["list"]):
        assert main(["runs", "--store", str(store), *argv]) == 0
    captured = capsys.readouterr()
    seen = {"stdout": captured.out, "stderr": captured.err, "logs": caplog.text}
    for path in tmp_path.rglob("*"):
        if path.is_file():
            seen[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert len(seen) >= 6 and any(run_id in text for text in seen.values())
    leaks = [(where, s) for where, text in seen.items() for s in secrets if s in text]
    assert not leaks, leaks
