"""Read-only, paginated queries over the run store for the viewer.

The connection is opened with SQLite's ``mode=ro`` URI and ``PRAGMA query_only``: the viewer can never write,
even if a bug asked it to. Pages read only what they show: a run page reads the stored metrics and one page of
examples; per-example fields used by lists, correction cells and paired tests are read with one
``json_extract`` per row (a handful of scalar fields, not the steps), and a whole trace is parsed only on the
example page. Columns that newer schemas add (``runs.errors``) are read when present, so the viewer opens
stores written by older and newer versions alike.

Not covered: full-text search over completions; stores on a network file system (SQLite's WAL needs a local
disk, as for the writer).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..records import Trace
from ..store import migrations
from ..store.runs import open_readonly

PAGE = 50
"""Rows per page of every paginated list."""

LIGHT = migrations.TRACE_SUMMARY
"""The scalar trace fields lists and statistics read, in the order of the store's summary index."""

_SUMMARY = "json_extract(data, " + ", ".join(f"'$.{f}'" for f in LIGHT) + ")"
"""The indexed expression (migration 3): selected exactly like this, SQLite reads it from the index."""

CELLS = {"cc": (True, True), "cw": (True, False), "wc": (False, True), "ww": (False, False)}
"""Correction transitions: (initially right, finally right)."""

_SECRET_KEY = re.compile(
    r"(?i)(api[_-]?key|secret|passw|authori[sz]ation|bearer|cookie|(^|_)token$|credential)")
_SECRET_TEXT = [(re.compile(r"(?i)(\w+://)[^/@\s:]+:[^/@\s]+@"), r"\1•••@"),  # user:password@ in a URL
                (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+"), r"\1 •••"),
                (re.compile(r"\b(sk|hf|gh[pousr]|xox[bp])[-_][\w-]{6,}"), "•••")]
"""What the viewer never shows: values under credential-like keys, passwords in URLs, bearer tokens, API
keys."""

_ROUND = re.compile(r"^(.*/)?round-(\d+)$")
"""A training round's metrics scope: an optional arm prefix and the round index."""


class ViewStore:
    """A read-only view of one run store file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError("no run store here (run `selfimprove eval` first, or pass --store)",
                            path=str(self.path))
        try:
            self.db = open_readonly(self.path, check_same_thread=False)
            migrations.check(self.db)
        except migrations.ForeignStore as e:
            raise UserError(f"not a selfimprove run store: it {e}", path=str(self.path)) from None
        except sqlite3.DatabaseError as e:
            raise UserError(f"cannot read the run store ({e})", path=str(self.path)) from None
        self.db.execute("PRAGMA query_only = ON")
        self.lock = threading.Lock()  # one connection, used by the server's worker threads in turn
        self.run_columns = {r[1] for r in self._all("PRAGMA table_info(runs)")}
        self.indexed = bool(self._one("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = "
                                      "'traces_summary'"))
        """Whether the store has the summary index (a store last written by an older selfimprove has not:
        lists and cells then parse every trace, and any command that opens the store adds it)."""

    def close(self) -> None:
        self.db.close()

    def _all(self, sql: str, args: tuple | list = ()) -> list[tuple]:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def _one(self, sql: str, args: tuple | list = ()):
        rows = self._all(sql, args)
        return rows[0] if rows else None

    # runs -------------------------------------------------------------------------------------------
    def list_runs(self, *, command: str = "", model: str = "", task: str = "", status: str = "",
                  since: str = "", until: str = "", page: int = 1) -> tuple[list[dict[str, Any]], int]:
        """One page of runs, newest first, and the number of runs that match the filters."""
        where, args = [], []
        for col, value in (("command", command), ("status", status)):
            if value:
                where.append(f"{col} = ?")
                args.append(value)
        for key, value in (("model", model), ("task", task)):
            if value:
                where.append(f"CAST(json_extract(config, '$.{key}') AS TEXT) = ?")
                args.append(value)
        if since:
            where.append("created >= ?")
            args.append(since)
        if until:
            where.append("substr(created, 1, 10) <= ?")
            args.append(until)
        sql_where = (" WHERE " + " AND ".join(where)) if where else ""
        total = self._one(f"SELECT COUNT(*) FROM runs{sql_where}", args)[0]
        extra = ", errors" if "errors" in self.run_columns else ""
        rows = self._all(f"SELECT id, command, status, created, updated, json_extract(config, '$.model'), "
                         f"json_extract(config, '$.task'){extra} FROM runs{sql_where} "
                         f"ORDER BY created DESC, id DESC LIMIT ? OFFSET ?", [*args, PAGE, (page - 1) * PAGE])
        keys = ("id", "command", "status", "created", "updated", "model", "task", "errors")
        runs = [redact(dict(zip(keys, (*r, None)))) for r in rows]  # errors: None where the schema has none
        for run in runs:
            run["traces"] = self._one("SELECT COUNT(*) FROM traces WHERE run_id = ?", (run["id"],))[0]
            run["summary"] = self.run_summary(run["id"])
        return runs, total

    def filter_values(self) -> dict[str, list[str]]:
        """The distinct commands, statuses, models and tasks, for the filter menus."""
        out = {}
        for key, expr in (("command", "command"), ("status", "status"),
                          ("model", "CAST(json_extract(config, '$.model') AS TEXT)"),
                          ("task", "CAST(json_extract(config, '$.task') AS TEXT)")):
            out[key] = [r[0] for r in self._all(f"SELECT DISTINCT {expr} FROM runs WHERE {expr} IS NOT NULL "
                                                f"ORDER BY 1")]
        return out

    def run_summary(self, run_id: str) -> dict[str, Any]:
        """Accuracy per strategy (a training run: per arm and split, at its last round) and tokens, from the
        stored metrics."""
        acc, last, tokens = {}, {}, 0
        for scope, name, value in self._all(
                "SELECT scope, name, value FROM metrics WHERE run_id = ? AND (name IN "
                "('accuracy', 'prompt_tokens', 'completion_tokens') OR name LIKE 'eval.%') "
                "ORDER BY rowid", (run_id,)):
            v = json.loads(value)
            if name == "accuracy":
                acc[scope] = v
            elif name.startswith("eval.") and isinstance(v, dict) and (m := _ROUND.match(scope)):
                key, r = f"{m[1] or ''}{name[5:]}", int(m[2])
                if r >= last.get(key, -1):
                    last[key], acc[key] = r, v.get("accuracy")
            elif name != "accuracy" and isinstance(v, (int, float)):
                tokens += v
        return {"accuracy": [(f"{k} (round {last[k]})" if k in last else k, v) for k, v in acc.items()],
                "tokens": tokens}

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        extra = ", errors" if "errors" in self.run_columns else ""
        row = self._one(f"SELECT id, command, config, seed, version, status, created, updated{extra} "
                        f"FROM runs WHERE id = ?", (run_id,))
        if row is None:
            return None
        run = dict(zip(("id", "command", "config", "seed", "version", "status", "created", "updated",
                        "errors"), (*row, None)))
        run["config"] = redact(json.loads(run["config"]))
        return run

    def metrics(self, run_id: str) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for scope, name, value in self._all("SELECT scope, name, value FROM metrics WHERE run_id = ? "
                                            "ORDER BY rowid", (run_id,)):
            out.setdefault(scope, {})[name] = json.loads(value)
        return out

    def scopes(self, run_id: str) -> dict[str, int]:
        """Every scope with stored traces, in the order it was first written, and its trace count."""
        return dict(self._all("SELECT scope, COUNT(*) FROM traces WHERE run_id = ? GROUP BY scope "
                              "ORDER BY MIN(rowid)", (run_id,)))

    # traces -----------------------------------------------------------------------------------------
    def example_ids(self, run_id: str, scope: str, page: int = 1, cell: str = "") -> tuple[list[str], int]:
        """One page of a scope's example ids in run order, optionally only those in a correction cell."""
        if cell:
            ids = [eid for eid, t in self.light(run_id, scope).items() if cell_of(t) == cell]
            return ids[(page - 1) * PAGE: page * PAGE], len(ids)
        total = self._one("SELECT COUNT(*) FROM traces WHERE run_id = ? AND scope = ?", (run_id, scope))[0]
        rows = self._all("SELECT example_id FROM traces WHERE run_id = ? AND scope = ? ORDER BY position "
                         "LIMIT ? OFFSET ?", (run_id, scope, PAGE, (page - 1) * PAGE))
        return [r[0] for r in rows], total

    def light(self, run_id: str, scope: str, ids: list[str] | None = None) -> dict[str, TraceSummary]:
        """Scalar fields of a scope's traces (all of them in run order, or the given ids), by example id, read
        from the summary index."""
        sql = f"SELECT example_id, {_SUMMARY} FROM traces WHERE run_id = ? AND scope = ?"
        args: list[Any] = [run_id, scope]
        if ids is not None:
            out = {}
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                q = sql + f" AND example_id IN ({','.join('?' * len(chunk))})"
                out.update((eid, _light_trace(eid, scope, v)) for eid, v in self._all(q, [*args, *chunk]))
            return out
        return {eid: _light_trace(eid, scope, v) for eid, v in self._all(sql + " ORDER BY position", args)}

    def trace(self, run_id: str, scope: str, example_id: str) -> Trace | None:
        row = self._one("SELECT data FROM traces WHERE run_id = ? AND scope = ? AND example_id = ?",
                        (run_id, scope, example_id))
        return Trace.from_json(row[0]) if row else None

    def neighbours(self, run_id: str, scope: str, example_id: str) -> tuple[str | None, str | None]:
        """The example ids before and after this one in the scope's run order."""
        row = self._one("SELECT position FROM traces WHERE run_id = ? AND scope = ? AND example_id = ?",
                        (run_id, scope, example_id))
        if row is None:
            return None, None
        prev = self._one("SELECT example_id FROM traces WHERE run_id = ? AND scope = ? AND position < ? "
                         "ORDER BY position DESC LIMIT 1", (run_id, scope, row[0]))
        nxt = self._one("SELECT example_id FROM traces WHERE run_id = ? AND scope = ? AND position > ? "
                        "ORDER BY position LIMIT 1", (run_id, scope, row[0]))
        return (prev[0] if prev else None), (nxt[0] if nxt else None)


def cell_of(t: Trace | TraceSummary) -> str | None:
    """The correction cell ('cc', 'cw', 'wc', 'ww') of an answered trace, as ``metrics.correction`` counts it
    (an unparseable answer is wrong); None for a failed request or an undecided verdict."""
    if t.status != "ok":
        return None
    before = False if t.initial_answer is None else t.initial_correct
    after = False if t.final_answer is None else t.correct
    if before is None or after is None:
        return None
    return ("c" if before else "w") + ("c" if after else "w")


def redact(value: Any) -> Any:
    """``value`` with credentials replaced by '•••' (keys named like secrets, and secrets inside strings)."""
    if isinstance(value, dict):
        return {k: "•••" if _SECRET_KEY.search(str(k)) and value[k] else redact(value[k]) for k in value}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        for pattern, repl in _SECRET_TEXT:
            value = pattern.sub(repl, value)
    return value


class TraceSummary:
    """The scalar fields of a ``Trace`` (no steps), read from the store's summary index: what lists,
    correction cells, paired tests and the metrics functions read, built about ten times faster than a
    ``Trace``."""

    __slots__ = ("calls", "completion_tokens", "confidence", "correct", "example_id", "final_answer", "info",
                 "initial_answer", "initial_correct", "prompt_tokens", "status", "steps", "strategy")

    def __init__(self, example_id: str, scope: str, values: list) -> None:
        (correct, initial_correct, self.initial_answer, self.final_answer, self.confidence, status, oracle,
         prompt_tokens, completion_tokens, calls) = values
        self.example_id, self.strategy, self.steps = example_id, scope, ()
        # SQLite's JSON booleans come back as 0 / 1
        self.correct = None if correct is None else bool(correct)
        self.initial_correct = None if initial_correct is None else bool(initial_correct)
        self.status, self.info = status or "ok", {"oracle": True} if oracle else {}
        self.prompt_tokens, self.completion_tokens, self.calls = (prompt_tokens or 0, completion_tokens or 0,
                                                                  calls or 0)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _light_trace(example_id: str, scope: str, values: str) -> TraceSummary:
    return TraceSummary(example_id, scope, json.loads(values))
