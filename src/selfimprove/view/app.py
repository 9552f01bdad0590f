"""The viewer's web app (Starlette, server-rendered Jinja2 templates shared with ``eval --report``).

Pages: the runs list (``/``), a run (``/run/{id}``: an eval run's strategy table, plots, correction cells,
paired tests and examples; a training run's rounds), one example across strategies
(``/run/{id}/example?id=...``), a round's kept rows or pairs, and the figures as PNGs. Everything is
read-only.

URL parameters never name files: a run directory comes from the store, an arm must be one of the directories
the run holds, a round is an integer and a figure one of a fixed set of names. Anything else is a 404.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..errors import UserError
from ..metrics.analysis import analysis
from ..report import plots as P
from ..report import sections as S
from ..report.render import environment
from .store import CELLS, PAGE, ViewStore

CELL_LABELS = {"cc": "c→c", "cw": "c→w (broken)", "wc": "w→c (fixed)", "ww": "w→w"}


class Viewer:
    """Request handlers over one read-only store."""

    def __init__(self, store_path: str | Path) -> None:
        self.store = ViewStore(store_path)
        self.env = environment()
        self._examples: dict[tuple, dict[str, Any]] = {}
        self._plots: dict[tuple, bytes | None] = {}
        self._summaries: dict[tuple, tuple[dict, dict]] = {}

    # ---- helpers -----------------------------------------------------------------------------------
    def page(self, template: str, status: int = 200, **context: Any):
        from starlette.responses import HTMLResponse

        html = self.env.get_template(template).render(static=False, **context)
        return HTMLResponse(html, status_code=status)

    def not_found(self, what: str):
        return self.page("error.html", status=404, message=what)

    def _run(self, request):
        run = self.store.get_run(request.path_params["run_id"])
        return run

    # ---- pages -------------------------------------------------------------------------------------
    def runs(self, request):
        q = request.query_params
        filters = {k: q.get(k, "") for k in ("command", "model", "task", "status", "since", "until")}
        page = _int(q.get("page"), 1)
        runs, total = self.store.list_runs(**filters, page=page)

        def page_url(p: int) -> str:
            return "/?" + urlencode({**{k: v for k, v in filters.items() if v}, "page": p})

        return self.page("runs.html", runs=runs, total=total, page=page, per_page=PAGE, filters=filters,
                         choices=self.store.filter_values(), page_url=page_url,
                         store_path=str(self.store.path))

    def run(self, request):
        run = self._run(request)
        if run is None:
            return self.not_found("no such run")
        if run["command"] in ("train", "demo") or "run_dir" in self.store.metrics(run["id"]).get("run", {}):
            from .training import training_page

            return training_page(self, request, run)
        return self.eval_page(request, run)

    def eval_page(self, request, run: dict[str, Any], base: str = ""):
        """The strategy table, figures, correction cells, paired test and one page of examples; ``base`` is
        the page's own path (the run page, or a training run's traces page). Tables come from the stored
        metrics and their ``analysis``; only a scope stored without them is read trace by trace (once per
        run version: the result is cached)."""
        rid, q = run["id"], request.query_params
        counts = self.store.scopes(rid)
        scope_names = list(counts)
        rows_m, analyses = self.summaries(run)
        labels = {s: S.label(s, analyses[s]["oracle"]) for s in scope_names}
        cell, list_scope = q.get("cell", ""), q.get("scope", "")
        if (cell and cell not in CELLS) or (list_scope and list_scope not in scope_names):
            return self.not_found("no such strategy or correction cell")
        list_scope = list_scope or (scope_names[0] if scope_names else "")
        page = _int(q.get("page"), 1)
        ids, total = self.store.example_ids(rid, list_scope, page, cell) if list_scope else ([], 0)
        rows = {s: self.store.light(rid, s, ids) for s in scope_names}
        columns = [s for s in scope_names if rows[s]]  # the scopes that hold any example of this page
        pair_a, pair_b = q.get("a", scope_names[0] if scope_names else ""), q.get("b", "")
        pair = pair_error = None
        if pair_b:
            if pair_a not in counts or pair_b not in counts:
                pair_error = "choose two strategies of this run"
            else:
                pair = S.paired(list(self.store.light(rid, pair_a).values()),
                                list(self.store.light(rid, pair_b).values()))
                pair_error = None if pair else "these two strategies share no example"
        return self.page(
            "view_eval.html", run=run, n_examples=max(counts.values(), default=0),
            strategy=S.strategy_table(rows_m, labels), calibration=S.calibration_table(analyses, labels),
            correction=S.correction_table(analyses, labels), gap=S.gap_table(rows_m, labels), paired=None,
            plots={name: f"/run/{rid}/plot/{name}.png?" + urlencode({"v": run["updated"]})
                   for name in P.EVAL_PLOTS},
            links=_Links(rid, cell, list_scope, base or f"/run/{rid}"), scope_names=scope_names,
            pair_a=pair_a,
            pair_b=pair_b, pair=pair, pair_error=pair_error, paired_head=S.PAIRED_HEAD, example_ids=ids,
            rows=rows, columns=columns, page=page, total=total, per_page=PAGE, cell=cell,
            cell_scope=list_scope,
            cell_label=CELL_LABELS.get(cell, ""), indexed=self.store.indexed)

    def summaries(self, run: dict[str, Any]) -> tuple[dict[str, dict], dict[str, dict]]:
        """Per scope: the metrics row and its analysis, as stored; computed from the traces (and cached for
        this version of the run) where the store holds none (a training round's evaluation, an older run)."""
        key = (run["id"], run["updated"])
        if key not in self._summaries:
            metrics = self.store.metrics(run["id"])
            rows, analyses = {}, {}
            for s in self.store.scopes(run["id"]):
                m = metrics.get(s) or {}
                traces = None
                if "accuracy" not in m or "analysis" not in m:
                    traces = list(self.store.light(run["id"], s).values())
                rows[s] = m if "accuracy" in m else _light_metrics(traces)
                analyses[s] = m["analysis"] if "analysis" in m else analysis(traces)
            self._summaries = {key: (rows, analyses)}  # one run at a time: a small, bounded cache
        return self._summaries[key]

    def example(self, request):
        run = self._run(request)
        example_id = request.query_params.get("id", "")
        if run is None or not example_id:
            return self.not_found("no such run or example")
        rid = run["id"]
        traces = [(s, t) for s in self.store.scopes(rid) if (t := self.store.trace(rid, s, example_id))]
        if not traces:
            return self.not_found(f"run {rid} has no trace of example {example_id!r}")
        gold, question, note = self.gold(run, traces[0][0], example_id)
        prev, nxt = self.store.neighbours(rid, traces[0][0], example_id)
        return self.page("example.html", run=run, example_id=example_id, traces=traces, gold=gold,
                         question=question, gold_note=note, prev=prev, next=nxt, links=_Links(rid))

    def plot(self, request):
        run = self._run(request)
        name = request.path_params["name"]
        if run is None or name not in P.EVAL_PLOTS:
            return self.not_found("no such figure")
        key = (run["id"], run["updated"], name)
        if key not in self._plots:
            if len(self._plots) > 64:  # bounded: figures of runs looked at long ago are drawn again
                self._plots.clear()
            self._plots[key] = self.eval_figure(run, name)
        return png_response(self._plots[key])

    def eval_figure(self, run: dict[str, Any], name: str) -> bytes | None:
        rows, analyses = self.summaries(run)
        labels = {s: S.label(s, a["oracle"]) for s, a in analyses.items()}
        if name == "accuracy-tokens":
            return P.accuracy_vs_tokens(rows, labels)
        if name == "cost":
            return P.cost(rows, labels)
        if name == "calibration":
            return P.reliability(S.calibration_table(analyses, labels)["data"], labels)
        return P.transitions(S.correction_table(analyses, labels)["data"], labels)

    # ---- gold answers ------------------------------------------------------------------------------
    def gold(self, run: dict[str, Any], scope: str, example_id: str) -> tuple[str | None, str | None, str]:
        """The example's gold answer and question, read from the run's task (traces do not store them)."""
        cfg = run["config"]
        spec, data = cfg.get("task"), cfg.get("data")
        if not isinstance(spec, str):
            return None, None, "gold answer unavailable (the run records no task)"
        splits = [x for x in (cfg.get("split"), scope.rsplit("/", 1)[-1], "test", "dev", "train", "test-hard")
                  if isinstance(x, str)]
        note = "gold answer unavailable (example not found in the task's splits)"
        for split in dict.fromkeys(splits):
            try:
                found = self._split(spec, data, split).get(example_id)
            except (UserError, OSError, ValueError, KeyError) as e:  # a moved data file, an unknown split
                note = f"gold answer unavailable ({type(e).__name__}: {str(e)[:120]})"
                continue
            if found is not None:
                return found.answer, found.question, ""
        return None, None, note

    def _split(self, spec: str, data: str | None, split: str) -> dict[str, Any]:
        key = (spec, data, split)
        if key not in self._examples:
            from ..tasks import get_task

            self._examples[key] = {e.id: e for e in get_task(spec, data=data).examples(split)}
        return self._examples[key]


class _Links:
    """URL builders for the templates (parameters are URL-encoded; ids and scopes may hold any character)."""

    def __init__(self, run_id: str, cell: str = "", scope: str = "", base: str = "") -> None:
        self.run_id, self.cell_key, self.list_scope = run_id, cell, scope
        self.base = base or f"/run/{run_id}"

    def scope(self, scope: str) -> str:
        return f"{self.base}?" + urlencode({"scope": scope}) + "#examples"

    def cell(self, scope: str, cell: str) -> str:
        return f"{self.base}?" + urlencode({"scope": scope, "cell": cell}) + "#examples"

    def example(self, example_id: str) -> str:
        return f"/run/{self.run_id}/example?" + urlencode({"id": example_id})

    def examples(self) -> str:
        return f"{self.base}?" + urlencode({"scope": self.list_scope}) + "#examples"

    def page(self, p: int) -> str:
        params = {"scope": self.list_scope, **({"cell": self.cell_key} if self.cell_key else {})}
        return f"{self.base}?" + urlencode({**params, "page": p}) + "#examples"


def _light_metrics(traces: list) -> dict[str, Any]:
    """The table row of a scope the store holds no metrics for (a training round's evaluation)."""
    from ..metrics.accuracy import accuracy

    m = accuracy(traces)
    n = max(len(traces), 1)
    m["prompt_tokens"] = sum(t.prompt_tokens for t in traces)
    m["completion_tokens"] = sum(t.completion_tokens for t in traces)
    m["tokens_per_example"] = (m["prompt_tokens"] + m["completion_tokens"]) / n
    m["calls"] = sum(t.calls for t in traces)
    return m


def _int(value: str | None, default: int) -> int:
    try:
        return max(1, int(value)) if value else default
    except ValueError:
        return default


def png_response(data: bytes | None):
    from starlette.responses import Response

    if data is None:
        return Response(status_code=404)
    return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


def create_app(store_path: str | Path):
    """The Starlette application over ``store_path`` (opened read-only)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    v = Viewer(store_path)
    routes = [Route("/", v.runs), Route("/run/{run_id}", v.run), Route("/run/{run_id}/example", v.example),
              Route("/run/{run_id}/plot/{name}.png", v.plot)]
    from .training import routes as training_routes

    app = Starlette(routes=routes + training_routes(v))
    app.state.viewer = v
    return app
