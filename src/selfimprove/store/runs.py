"""The run store: SQLite in WAL mode.

Tables: ``runs`` (resolved config, seed, package version, status), ``traces`` (one row per run, strategy and
example; written in small transactions as work finishes, so a killed run loses at most the batch in flight),
``metrics`` and ``cache`` (completions keyed by model fingerprint, prompt, sampling parameters, seed and
sample index). ``CachedBackend`` wraps any backend with that cache, which is what makes ``--resume`` cheap:
a resumed run skips examples whose traces are stored, and regenerates nothing it already paid for.

The schema is versioned (``store.migrations``); a corrupted, foreign or unwritable file is a ``UserError``
naming it; read-only opens (``readonly=True``: list, show, export) never write; ``lock_run`` keeps a run to
one process at a time.

Not covered: concurrent writers on a network file system (SQLite's WAL needs a local disk); pruning the cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import sqlite3
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UserError
from ..files import home
from ..records import Completion, SamplingParams, Trace
from . import migrations


def default_store_path() -> Path:
    return home() / "runs.db"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RunStore:
    """One SQLite file holding every run. Safe to open from several processes (WAL)."""

    def __init__(self, path: str | Path | None = None, *, readonly: bool = False) -> None:
        """Open (creating and migrating unless ``readonly``) the store at ``path``. A missing, corrupted,
        foreign or unwritable store is a ``UserError`` naming the file; ``readonly`` opens never write, so a
        read-only store can still be listed and exported."""
        self.path = Path(path) if path else default_store_path()
        self.readonly = readonly
        self._locks: dict[str, Any] = {}
        try:
            self.db = open_readonly(self.path) if readonly else _open_writable(self.path)
            migrations.check(self.db) if readonly else migrations.migrate(self.db)
        except migrations.ForeignStore as e:
            raise UserError(f"not a selfimprove run store: it {e}; pass another --store", path=str(self.path)
                            ) from None
        except sqlite3.DatabaseError as e:
            raise UserError(_db_error(e), path=str(self.path)) from None

    def close(self) -> None:
        for f in self._locks.values():
            f.close()
        self._locks.clear()
        self.db.close()

    def lock_run(self, run_id: str) -> None:
        """Hold run ``run_id`` for this process until it exits (an advisory ``flock`` on a file beside the
        store, released by the kernel even on ``kill -9``); a second process gets a UserError."""
        import fcntl

        if run_id in self._locks:
            return
        folder = self.path.parent / f"{self.path.name}.locks"
        try:
            folder.mkdir(exist_ok=True)
            f = open(folder / f"{run_id}.lock", "a+", encoding="utf-8")  # noqa: SIM115 — held until close
        except OSError as e:
            raise UserError(f"cannot create the lock file of run {run_id}: {e.strerror}", path=str(folder)
                            ) from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise UserError(f"run {run_id} is in use by {holder}; wait for it to finish (one process per run "
                            "at a time)", path=str(self.path)) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        self._locks[run_id] = f

    def delete_run(self, run_id: str) -> None:
        """Remove a run that was rejected before doing any work (no run is left half-written)."""
        with self.db:
            self.db.execute("BEGIN")
            for table, col in (("traces", "run_id"), ("metrics", "run_id"), ("runs", "id")):
                self.db.execute(f"DELETE FROM {table} WHERE {col} = ?", (run_id,))

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

    def update_config(self, run_id: str, config: dict[str, Any]) -> None:
        """Replace run ``run_id``'s stored config (``eval --resume RUN --limit N`` raising the limit)."""
        self.db.execute("UPDATE runs SET config = ?, updated = ? WHERE id = ?",
                        (json.dumps(config, sort_keys=True, default=str), _now(), run_id))

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
        """Examples with a stored trace whose requests all succeeded (a failed trace is not done)."""
        return {r[0] for r in self.db.execute(
            "SELECT example_id FROM traces WHERE run_id = ? AND scope = ? "
            "AND coalesce(json_extract(data, '$.status'), 'ok') = 'ok'", (run_id, scope))}

    def failed_ids(self, run_id: str, scope: str | None = None) -> set[str]:
        """Examples whose stored trace records a request that failed past its retries."""
        sql = ("SELECT example_id FROM traces WHERE run_id = ? AND coalesce(json_extract(data, '$.status'), "
               "'ok') != 'ok'" + (" AND scope = ?" if scope else ""))
        return {r[0] for r in self.db.execute(sql, (run_id, scope) if scope else (run_id,))}

    def replace_traces(self, run_id: str, scope: str, traces: Sequence[Trace], start: int) -> None:
        """Store traces that replace failed ones (a resumed retry), in one transaction. Replacing a trace
        that succeeded is refused: only failed work is ever redone."""
        with self.db:
            self.db.execute("BEGIN")
            for i, t in enumerate(traces):
                old = self.db.execute("SELECT coalesce(json_extract(data, '$.status'), 'ok') FROM "
                                      "traces WHERE run_id = ? AND scope = ? AND example_id = ?",
                                      (run_id, scope, t.example_id)).fetchone()
                if old is not None and old[0] == "ok":
                    raise sqlite3.IntegrityError(f"trace {scope}/{t.example_id} of run {run_id} is done")
                self.db.execute("INSERT OR REPLACE INTO traces VALUES (?,?,?,?,?)",
                                (run_id, scope, t.example_id, start + i, t.to_json()))
            self.db.execute("UPDATE runs SET updated = ? WHERE id = ?", (_now(), run_id))

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


def _open_writable(path: Path) -> sqlite3.Connection:
    if path.is_dir():
        raise UserError("is a directory, not a run store file; pass a file path to --store", path=str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the store's folder: {e.strerror or e}",
                        path=str(path.parent)) from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError("the run store is not writable (read-only file or folder); `selfimprove runs "
                        "list/show/export` can still read it, or pass another --store", path=str(path))
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def open_readonly(path: Path, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection that cannot write (``mode=ro``, or ``immutable`` where a read-only folder forbids even the
    WAL index); ``check_same_thread=False`` for a server whose threads share it behind a lock."""
    if path.is_dir():
        raise UserError("is a directory, not a run store file; pass a file path to --store", path=str(path))
    if not path.exists():
        raise UserError("no run store here yet (nothing has been run with it)", path=str(path))
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    try:  # immutable: a WAL store in a read-only folder cannot create its -shm file for a normal read
        db = sqlite3.connect(uri + "?mode=ro", uri=True, isolation_level=None,
                             check_same_thread=check_same_thread)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        db = sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None,
                             check_same_thread=check_same_thread)
    return db


def _db_error(e: sqlite3.DatabaseError) -> str:
    msg = str(e)
    if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
        return f"not a selfimprove run store or corrupted ({msg}); move it away or pass another --store"
    if "readonly" in msg or "read-only" in msg:
        return f"the run store is read-only ({msg}); `selfimprove runs list/show/export` can still read it"
    return f"cannot use the run store ({msg})"


def cache_key(fingerprint: str, prompt: str, params: SamplingParams, index: int) -> str:
    spec = params.to_dict()
    spec.pop("n")  # sample i is the same whatever n is asked for
    blob = json.dumps([fingerprint, prompt, spec, index], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class MemoryCache:
    """The completion cache's two calls over a dict that lives as long as the process: the demo's arms,
    which start from one model and draw their round-1 samples with the same prompts, parameters and seed,
    draw them once (``CachedBackend(backend, MemoryCache())``). ``hits`` counts completions found."""

    def __init__(self) -> None:
        self.data: dict[str, Completion] = {}
        self.hits = 0

    def cache_get(self, keys: Sequence[str]) -> dict[str, Completion]:
        found = {k: self.data[k] for k in keys if k in self.data}
        self.hits += len(found)
        return found

    def cache_put(self, items: Iterable[tuple[str, Completion]]) -> None:
        self.data.update(items)


class CachedBackend:
    """Wrap a backend with a completion cache (the store's, or a ``MemoryCache``). Caches only deterministic
    calls (greedy, or a fixed seed on a backend that honours seeds); failed completions are never cached."""

    def __init__(self, backend, store: RunStore | MemoryCache) -> None:
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
