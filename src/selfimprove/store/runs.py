"""The run store: SQLite in WAL mode.

Tables: ``runs`` (resolved config, seed, package version, status), ``traces`` (one row per run, strategy and
example; written in small transactions as work finishes, so a killed run loses at most the batch in flight),
``metrics`` and ``cache`` (completions keyed by model fingerprint, prompt, sampling parameters, seed and
sample index). ``CachedBackend`` wraps any backend with that cache, which is what makes ``--resume`` cheap:
a resumed run skips examples whose traces are stored, and regenerates nothing it already paid for.

Not covered: concurrent writers on a network file system (SQLite's WAL needs a local disk); pruning the cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UserError
from ..files import home
from ..records import Completion, SamplingParams, Trace

SCHEMA = """
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
"""


def default_store_path() -> Path:
    return home() / "runs.db"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RunStore:
    """One SQLite file holding every run. Safe to open from several processes (WAL)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # runs -------------------------------------------------------------------------------------------
    def create_run(self, command: str, config: dict[str, Any], seed: int | None = None) -> str:
        run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        self.db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?)",
                        (run_id, command, json.dumps(config, sort_keys=True, default=str), seed, __version__,
                         "running", _now(), _now()))
        return run_id

    def get_run(self, run_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT id, command, config, seed, version, status, created, updated FROM runs "
                              "WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UserError(f"no run '{run_id}' in {self.path} (see `selfimprove runs list`)")
        keys = ("id", "command", "config", "seed", "version", "status", "created", "updated")
        run = dict(zip(keys, row))
        run["config"] = json.loads(run["config"])
        return run

    def set_status(self, run_id: str, status: str) -> None:
        self.db.execute("UPDATE runs SET status = ?, updated = ? WHERE id = ?", (status, _now(), run_id))

    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT id, command, status, created, updated, "
                               "(SELECT COUNT(*) FROM traces t WHERE t.run_id = runs.id) "
                               "FROM runs ORDER BY created DESC, id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(zip(("id", "command", "status", "created", "updated", "traces"), r)) for r in rows]

    # traces -----------------------------------------------------------------------------------------
    def add_traces(self, run_id: str, scope: str, traces: Sequence[Trace], start: int) -> None:
        """Store traces in one transaction; ``start`` is the position of the first in the scope's order.
        Inserting a trace that exists is an error (it would be a duplicate)."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO traces VALUES (?,?,?,?,?)",
                                [(run_id, scope, t.example_id, start + i, t.to_json())
                                 for i, t in enumerate(traces)])
            self.db.execute("UPDATE runs SET updated = ? WHERE id = ?", (_now(), run_id))

    def traces(self, run_id: str, scope: str | None = None) -> list[Trace]:
        sql = "SELECT data FROM traces WHERE run_id = ?" + (" AND scope = ?" if scope else "")
        args = (run_id, scope) if scope else (run_id,)
        return [Trace.from_json(r[0]) for r in self.db.execute(sql + " ORDER BY scope, position", args)]

    def done_ids(self, run_id: str, scope: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT example_id FROM traces WHERE run_id = ? AND scope = ?",
                                              (run_id, scope))}

    def scopes(self, run_id: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT scope FROM traces WHERE run_id = ? GROUP BY scope ORDER BY MIN(rowid)", (run_id,))]

    # metrics ----------------------------------------------------------------------------------------
    def put_metrics(self, run_id: str, scope: str, metrics: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO metrics VALUES (?,?,?,?)",
                                [(run_id, scope, k, json.dumps(v, default=str)) for k, v in metrics.items()])

    def metrics(self, run_id: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for scope, name, value in self.db.execute(
                "SELECT scope, name, value FROM metrics WHERE run_id = ? ORDER BY rowid", (run_id,)):
            out.setdefault(scope, {})[name] = json.loads(value)
        return out

    # completion cache -------------------------------------------------------------------------------
    def cache_get(self, keys: Sequence[str]) -> dict[str, Completion]:
        out = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT key, data FROM cache WHERE key IN ({','.join('?' * len(chunk))})"
            out.update({k: Completion.from_json(d) for k, d in self.db.execute(q, chunk)})
        return out

    def cache_put(self, items: Iterable[tuple[str, Completion]]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO cache VALUES (?,?)",
                                [(k, c.to_json()) for k, c in items])


def cache_key(fingerprint: str, prompt: str, params: SamplingParams, index: int) -> str:
    spec = params.to_dict()
    spec.pop("n")  # sample i is the same whatever n is asked for
    blob = json.dumps([fingerprint, prompt, spec, index], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class CachedBackend:
    """Wrap a backend with the store's completion cache. Caches only deterministic calls (greedy, or a fixed
    seed on a backend that honours seeds); failed completions are never cached."""

    def __init__(self, backend, store: RunStore) -> None:
        self.backend, self.store = backend, store
        self.name, self.capabilities = backend.name, backend.capabilities
        self.hits = self.misses = 0

    def fingerprint(self) -> str:
        return self.backend.fingerprint()

    def __getattr__(self, attr):  # loglikelihood and backend-specific extras pass through
        return getattr(self.backend, attr)

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        cacheable = params.greedy or (params.seed is not None and self.capabilities.seed)
        if not cacheable:
            return self.backend.generate(prompts, params)
        fp = self.fingerprint()
        keys = [[cache_key(fp, p, params, i) for i in range(params.n)] for p in prompts]
        found = self.store.cache_get([k for row in keys for k in row])
        missing = [i for i, row in enumerate(keys) if not all(k in found for k in row)]
        self.hits += len(prompts) - len(missing)
        self.misses += len(missing)
        fresh = self.backend.generate([prompts[i] for i in missing], params) if missing else []
        self.store.cache_put((keys[i][j], c) for i, row in zip(missing, fresh) for j, c in enumerate(row)
                             if c.ok)
        out = [[found.get(k) for k in row] for row in keys]
        for i, row in zip(missing, fresh):
            out[i] = row
        return out
