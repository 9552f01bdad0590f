"""Numbered schema migrations of the run store.

``schema_version`` holds one row: the number of the last migration applied. Opening a store applies the
missing ones in order, each in its own transaction, so an old store upgrades in place and a future change is a
new entry at the end of ``MIGRATIONS`` (never an edit of an old one). A store written before this table
existed holds exactly migration 1's tables and is recorded as version 1. A store whose version is newer than
this package knows is refused (an older selfimprove must not write into it).
"""

from __future__ import annotations

import re
import sqlite3

MIGRATIONS: list[tuple[str, str]] = [
    ("runs, traces, metrics and the completion cache", """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, command TEXT NOT NULL, config TEXT NOT NULL, seed INTEGER,
    version TEXT NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS traces (
    run_id TEXT NOT NULL, scope TEXT NOT NULL, example_id TEXT NOT NULL, position INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (run_id, scope, example_id));
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, scope, name));
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, data TEXT NOT NULL);
"""),
    ("an index of runs by status (runs list, finding incomplete runs)", """
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, created);
"""),
    ("an index of trace summaries in run order (the viewer's example lists, cells and paired tests)", """
CREATE INDEX IF NOT EXISTS traces_summary ON traces (run_id, scope, position, example_id, json_extract(data,
    '$.correct', '$.initial_correct', '$.initial_answer', '$.final_answer', '$.confidence', '$.status',
    '$.info.oracle', '$.prompt_tokens', '$.completion_tokens', '$.calls'));
"""),
    ("credentials that older versions stored in model URLs (user:password@) replaced by ***",
     lambda db: _scrub_credentials(db)),
]
"""(what it does, SQL or a function of the connection), in order; migration i + 1 brings a store from version
i to i + 1."""

_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s,?#\"@]*(?::[^/\s,?#\"]*)?@")


def _scrub_credentials(db: sqlite3.Connection) -> None:
    for run_id, config in db.execute("SELECT id, config FROM runs").fetchall():
        clean = _USERINFO.sub(r"\1***@", config)
        if clean != config:
            db.execute("UPDATE runs SET config = ? WHERE id = ?", (clean, run_id))


LATEST = len(MIGRATIONS)

TRACE_SUMMARY = ("correct", "initial_correct", "initial_answer", "final_answer", "confidence", "status",
                 "info.oracle", "prompt_tokens", "completion_tokens", "calls")
"""The trace fields migration 3 indexes, in its order: a query that selects
``json_extract(data, '$.correct', ..., '$.calls')`` with exactly these paths reads them from the index instead
of parsing every trace (``selfimprove.view`` does)."""

_OURS = {"runs", "traces", "metrics", "cache"}


class ForeignStore(Exception):
    """The file is an SQLite database, but not a run store (or one from a newer selfimprove)."""


def version(db: sqlite3.Connection) -> int:
    """The store's schema version: 0 for an empty database, 1 for a store from before versioning."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" in tables:
        row = db.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0
    if not tables:
        return 0
    if _OURS <= tables:
        return 1
    raise ForeignStore(f"holds tables {sorted(tables)[:6]} and no selfimprove schema")


def check(db: sqlite3.Connection) -> int:
    """The version, refusing a foreign database or one newer than ``LATEST``."""
    v = version(db)
    if v > LATEST:
        raise ForeignStore(f"has schema version {v}, newer than this selfimprove knows ({LATEST}); upgrade "
                           "selfimprove to use it")
    return v


def migrate(db: sqlite3.Connection) -> int:
    """Apply the missing migrations; return the version now."""
    v = check(db)
    for i in range(v, LATEST):
        db.execute("BEGIN IMMEDIATE")
        try:
            if check(db) > i:  # another process migrated meanwhile
                db.execute("COMMIT")
                continue
            step = MIGRATIONS[i][1]
            if callable(step):
                step(db)
            else:
                for statement in filter(str.strip, step.split(";")):
                    db.execute(statement)
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version VALUES (?)", (i + 1,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return LATEST
