"""The viewer's training pages: rounds with accuracy per split and CIs, kept rows / pairs with their
provenance, guards over rounds, per-round figures and each round's model directory.

A training run's directory (layout in ``training.rundir``) is found from the store (``metrics['run']
['run_dir']`` or the config's ``run_dir``), never from the URL: the URL names an arm by its index among the
directories the run holds and a round by its integer, and both are checked against what exists. A run whose
directory has gone is shown from the metrics the store mirrors (rounds and accuracy; no rows).
"""

from __future__ import annotations

import json
import re
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..report import plots as P
from .store import PAGE

TRAIN_PLOTS = ("accuracy", "guards", "data", "rl")
"""The per-arm figures of a training run, by name ('rl': reward accuracy, policy entropy and dev accuracy per
round, for runs whose rounds log an RL policy's entropy)."""

RATE_NAMES = ("rate", "auroc", "relative", "accept_correct", "accept_wrong", "pass_at_k", "reward_at_k",
              "reward_accuracy", "pair_accuracy", "majority_wrong_share", "confident_wrong_share")
"""Guard values on a 0–1 scale, the ones drawn over rounds (the table shows every value)."""

_ROUND_DIR = re.compile(r"^round-(\d+)$")


def routes(v) -> list:
    from starlette.routing import Route

    return [Route("/run/{run_id}/traces", lambda request: traces_page(v, request)),
            Route("/run/{run_id}/arms.png", lambda request: arms_plot(v, request)),
            Route("/run/{run_id}/arm/{arm:int}/plot/{name}.png", lambda request: train_plot(v, request)),
            Route("/run/{run_id}/arm/{arm:int}/round/{round:int}", lambda request: round_page(v, request))]


def run_dir(v, run: dict[str, Any]) -> Path | None:
    """The run's directory as the store records it (None when it records none)."""
    recorded = v.store.metrics(run["id"]).get("run", {}).get("run_dir") or run["config"].get("run_dir")
    return Path(recorded) if recorded else None


def arms(path: Path | None) -> list[tuple[str, Path]]:
    """(name, directory) of each loop the run holds: the run dir itself, or one sub-directory per arm."""
    if path is None or not path.is_dir():
        return []
    if (path / "round-0").is_dir():
        return [("", path)]
    return [(d.name, d) for d in sorted(path.iterdir()) if d.is_dir() and (d / "round-0").is_dir()]


def rounds(arm_dir: Path) -> list[dict[str, Any]]:
    """Every finished round's metrics.json, in order, with the round's model directory when it has one."""
    found = sorted(int(m[1]) for d in arm_dir.iterdir() if (m := _ROUND_DIR.match(d.name)))
    out = []
    for r in found:
        f = arm_dir / f"round-{r}" / "metrics.json"
        if f.is_file():
            m = json.loads(f.read_text(encoding="utf-8"))
            m["round"] = r
            model = arm_dir / f"round-{r}"
            m["model_dir"] = str(model) if (model / "config.json").is_file() else None
            m["data_file"] = next((n for n in ("pairs.jsonl", "rows.jsonl") if (model / n).is_file()), None)
            out.append(m)
    return out


def rounds_from_store(metrics: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rounds per arm rebuilt from the metrics the store mirrors (``[arm/]round-<r>`` scopes)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for scope, m in metrics.items():
        match = re.match(r"^(?:(.*)/)?round-(\d+)$", scope)
        if not match:
            continue
        evals = {k[5:]: v for k, v in m.items() if k.startswith("eval.") and isinstance(v, dict)}
        out.setdefault(match[1] or "", []).append({"round": int(match[2]), "eval": evals,
                                                   "guards": m.get("guards"),
                                                   "model_dir": None, "data_file": None})
    return {a: sorted(rs, key=lambda m: m["round"]) for a, rs in out.items()}


def training_page(v, request, run: dict[str, Any]):
    path = run_dir(v, run)
    found = arms(path)
    if found:
        per_arm = [(name, rounds(d)) for name, d in found]
    else:
        per_arm = list(rounds_from_store(v.store.metrics(run["id"])).items())
    splits = sorted({s for _, rs in per_arm for m in rs for s in m.get("eval", {})})
    arms_ctx = []
    for i, (name, rs) in enumerate(per_arm):
        guards = guard_rows(rs)
        arms_ctx.append({"index": i, "name": name or _method_name(run),
                         "rounds": rs, "guards": guards, "plots": {
                             k: f"/run/{run['id']}/arm/{i}/plot/{k}.png?" + urlencode({"v": run["updated"]})
                             for k in TRAIN_PLOTS
                             if (k != "guards" or guards["rows"]) and (k != "rl" or _is_rl(rs))}})
    arms_figure = (f"/run/{run['id']}/arms.png?"
                   + urlencode({"v": run["updated"]})) if len(per_arm) > 1 else None
    scopes = v.store.scopes(run["id"])
    others = {s: n for s, n in scopes.items() if not re.match(r"^(?:[^/]+/)?round-\d+/", s)}
    return v.page("training.html", run=run, run_dir=str(path) if path else None, dir_found=bool(found),
                  arms=arms_ctx, splits=splits, scopes=scopes, arms_figure=arms_figure, others=others,
                  scope_link=lambda s: f"/run/{run['id']}/traces?" + urlencode({"scope": s}) + "#examples")


def guard_rows(rs: list[dict[str, Any]]) -> dict[str, Any]:
    """Numeric guard values flattened to dotted names, one row per name, one column per round."""
    flat = [(m["round"], _flatten(m.get("guards") or {})) for m in rs]
    names = sorted({k for _, g in flat for k, x in g.items() if isinstance(x, (int, float))
                    and not isinstance(x, bool) and k not in ("probed", "round_model")})
    return {"rounds": [r for r, _ in flat], "rows": [(n, [g.get(n) for _, g in flat]) for n in names]}


def _is_rl(rs: list[dict[str, Any]]) -> bool:
    return any((m.get("guards") or {}).get("entropy") for m in rs)


def rl_figure(rs: list[dict[str, Any]], label: str) -> bytes | None:
    """An RL run's reward accuracy against gold, policy entropy (TRL's log, last step of the round) and greedy
    accuracy per split, over rounds (round 0: accuracy only)."""
    lines: dict[str, list[tuple[int, float]]] = {}
    for m in rs:
        g = m.get("guards") or {}
        if isinstance(g.get("reward_accuracy"), (int, float)):
            lines.setdefault("reward accuracy (vs gold)", []).append((m["round"], g["reward_accuracy"]))
        if (g.get("entropy") or {}).get("last") is not None:
            lines.setdefault("policy entropy (nats/token)", []).append((m["round"], g["entropy"]["last"]))
        for split, a in (m.get("eval") or {}).items():
            if a.get("accuracy") is not None:
                lines.setdefault(f"{split} accuracy", []).append((m["round"], a["accuracy"]))
    return P.series(lines, f"Reward accuracy, entropy and accuracy per round · {label}", "value")


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, x in d.items():
            out.update(_flatten(x, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = d
    return out


def _arm(v, request, run):
    found = arms(run_dir(v, run))
    i = request.path_params["arm"]
    return found[i] if 0 <= i < len(found) else None


def arms_plot(v, request):
    """Every arm's accuracy per round, one panel per split (the demo page's figure)."""
    from .app import png_response

    run = v.store.get_run(request.path_params["run_id"])
    if run is None:
        return v.not_found("no such run")
    key = (run["id"], run["updated"], "arms")
    if key not in v._plots:
        found = arms(run_dir(v, run))
        per_arm = ({name: rounds(d) for name, d in found} if found
                   else rounds_from_store(v.store.metrics(run["id"])))
        splits = sorted({s for rs in per_arm.values() for m in rs for s in m.get("eval", {})})
        v._plots[key] = P.arms_by_split(per_arm, splits)
    return png_response(v._plots[key])


def train_plot(v, request):
    from .app import png_response

    run = v.store.get_run(request.path_params["run_id"])
    name = request.path_params["name"]
    arm = _arm(v, request, run) if run else None
    if arm is None or name not in TRAIN_PLOTS:
        return v.not_found("no such figure")
    key = (run["id"], run["updated"], request.path_params["arm"], name)
    if key not in v._plots:
        rs = rounds(arm[1])
        label = arm[0] or _method_name(run)
        if name == "accuracy":
            v._plots[key] = P.rounds_accuracy(rs, f"Greedy accuracy per round · {label}")
        elif name == "guards":
            g = guard_rows(rs)
            rates = [(n, vals) for n, vals in g["rows"] if n.rsplit(".", 1)[-1] in RATE_NAMES][:12]
            v._plots[key] = P.series({n: [(r, x) for r, x in zip(g["rounds"], vals) if x is not None]
                                      for n, vals in rates}, f"Guards over rounds · {label}", "rate")
        elif name == "rl":
            v._plots[key] = rl_figure(rs, label)
        else:
            v._plots[key] = P.series({k: [(m["round"], m["data"][k]) for m in rs
                                          if isinstance(m.get("data", {}).get(k), (int, float))]
                                      for k in ("rows", "pairs", "examples", "samples")},
                                     f"Training data per round · {label}", "count")
    return png_response(v._plots[key])


def round_page(v, request):
    """One round: its files (the model directory), and its kept rows or pairs with their provenance."""
    run = v.store.get_run(request.path_params["run_id"])
    arm = _arm(v, request, run) if run else None
    r = request.path_params["round"]
    if arm is None or not (arm[1] / f"round-{r}").is_dir():
        return v.not_found("no such arm or round")
    rdir = arm[1] / f"round-{r}"
    kind = next((n for n in ("pairs", "rows") if (rdir / f"{n}.jsonl").is_file()), None)
    if request.query_params.get("data") == "rows" and (rdir / "rows.jsonl").is_file():
        kind = "rows"
    page = max(1, int(request.query_params.get("page", "1") or 1)) if request.query_params.get(
        "page", "1").isdigit() else 1
    items, total = [], 0
    if kind:
        with (rdir / f"{kind}.jsonl").open(encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
        total = len(lines)
        items = [json.loads(line) for line in islice(lines, (page - 1) * PAGE, page * PAGE)]
    files = sorted((p.name, p.stat().st_size) for p in rdir.iterdir()
                   if p.is_file() and not p.name.startswith("."))
    base = f"/run/{run['id']}/arm/{request.path_params['arm']}/round/{r}"
    label = arm[0] or _method_name(run) or "run"
    return v.page("round.html", run=run, arm=label, round=r, round_dir=str(rdir), files=files, kind=kind,
                  items=items, total=total, page=page, per_page=PAGE,
                  has_rows=(rdir / "rows.jsonl").is_file(), base=base,
                  page_url=lambda p: base + "?" + urlencode({"data": kind or "", "page": p}),
                  is_model=(rdir / "config.json").is_file())


def traces_page(v, request):
    """The eval page over every trace scope of a run (a training run's per-round evaluations, the demo's
    inference strategies): examples, correction cells and paired tests between any two scopes."""
    run = v.store.get_run(request.path_params["run_id"])
    if run is None:
        return v.not_found("no such run")
    return v.eval_page(request, run, base=f"/run/{run['id']}/traces")


def _method_name(run) -> str:
    """The training method of a run's stored config (a table with its name; a plain name in older runs)."""
    method = run["config"].get("loop", {}).get("method", "")
    return method.get("name", "") if isinstance(method, dict) else method
