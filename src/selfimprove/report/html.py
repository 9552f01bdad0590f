"""A self-contained HTML report of one eval run: the comparison table, accuracy versus tokens, reliability
diagrams, correction transitions, the generation–verification gap of self-verified selection, per-strategy cost
and paired tests against the first strategy.

Figures are matplotlib PNGs embedded as base64, so the file can be mailed or archived alone. Strategies that
read the gold answer (``trace.info['oracle']``) are labelled "oracle" everywhere they appear. Unparseable
answers count as wrong in accuracy and paired tests, as in the table of ``selfimprove eval``.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from ..metrics.calibration import calibration_from_traces
from ..metrics.correction import correction_from_traces
from ..metrics.stats import mcnemar_exact, paired_bootstrap


def majority_curve(m: dict) -> list[tuple[float, float]]:
    """(tokens per example, maj@k) for every k the strategy's pool metrics hold (a pool of K samples), with
    the tokens of k samples estimated as the prompt tokens plus k/K of the completion tokens. Only for a
    strategy whose pool is all it spent — one call per example, nothing verified (self-consistency, sample);
    an adaptive or verifying strategy's tokens do not divide that way, and it gets no curve."""
    ks = sorted(int(key[4:]) for key in m if key.startswith("maj@") and m[key] is not None)
    if not ks or not m.get("n") or m.get("calls") != m["n"] or "verification" in m:
        return []
    prompt, completion, top = m["prompt_tokens"] / m["n"], m["completion_tokens"] / m["n"], ks[-1]
    return [(prompt + completion * k / top, m[f"maj@{k}"]) for k in ks]


def fig_to_img(fig) -> str:
    """A matplotlib figure as an embedded base64 PNG ``<img>`` (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _num(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _label(scope: str, traces) -> str:
    oracle = any(t.info.get("oracle") for t in traces)
    return f"{scope} (oracle)" if oracle and "oracle" not in scope else scope


def html_table(headers, rows) -> str:
    """An HTML table; every cell is escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def build_sections(scopes: dict[str, list], metrics: dict[str, dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {s: _label(s, ts) for s, ts in scopes.items()}
    out = ["<h2>Strategies</h2>", html_table(
        ["strategy", "accuracy %", "95% CI", "unparsed", "tokens/example", "calls", "wall s"],
        [[labels[s], _pct(m["accuracy"]), f"{_pct(m['ci95'][0])}–{_pct(m['ci95'][1])}" if m.get("ci95") else "—",
          f"{m['unparsed']}/{m['n']}", f"{m['tokens_per_example']:.0f}", m["calls"], f"{m['wall_s']:.1f}"]
         for s, m in metrics.items()])]

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for s, m in metrics.items():
        ci = m.get("ci95") or (m["accuracy"], m["accuracy"])
        ax.errorbar(m["tokens_per_example"], 100 * m["accuracy"], fmt="o",
                    yerr=[[100 * (m["accuracy"] - ci[0])], [100 * (ci[1] - m["accuracy"])]], capsize=3)
        ax.annotate(labels[s], (m["tokens_per_example"], 100 * m["accuracy"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
        curve = majority_curve(m)
        if len(curve) > 1:  # the vote over the first k samples of the same pool, k = 1, 2, 4, ...
            ax.plot([x for x, _ in curve], [100 * y for _, y in curve], ":", lw=1, color="grey",
                    label=f"{labels[s]}: majority of its first k samples")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xscale("log")
    ax.set(xlabel="tokens per example (prompt + completion, log scale)", ylabel="accuracy % (95% CI)",
           title="Accuracy versus tokens spent")
    out += ["<h2>Accuracy versus cost</h2>", fig_to_img(fig)]

    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    names = list(metrics)
    ax.barh(names, [metrics[s]["prompt_tokens"] for s in names], label="prompt")
    ax.barh(names, [metrics[s]["completion_tokens"] for s in names],
            left=[metrics[s]["prompt_tokens"] for s in names], label="completion")
    ax.set(xlabel="tokens (whole run)", title="Cost per strategy")
    ax.legend()
    out += [fig_to_img(fig)]

    calib = {s: calibration_from_traces(ts) for s, ts in scopes.items() if any(t.confidence is not None
                                                                                 for t in ts)}
    if calib:
        rows = [[labels[s], c["n"], c["n_missing"], _num(c["ece"]), _num(c["brier"]), _num(c["auroc"])]
                for s, c in calib.items()]
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        for s, c in calib.items():
            pts = [(b["mean_confidence"], b["accuracy"]) for b in c["reliability"] if b["count"]]
            if pts:
                ax.plot(*zip(*pts), "o-", label=labels[s], ms=4)
        ax.set(xlabel="confidence", ylabel="accuracy", title="Reliability diagram", xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=7)
        out += ["<h2>Calibration</h2>", html_table(["strategy", "n", "missing", "ECE", "Brier", "AUROC"], rows),
                fig_to_img(fig)]

    corr = {s: correction_from_traces(ts, unparsed_as_wrong=True) for s, ts in scopes.items()
            if any(t.initial_answer != t.final_answer for t in ts)}
    if corr:
        rows = [[labels[s], _pct(c["acc1"]), _pct(c["acc2"]), _pct(c["delta"]), _num(c["cl"]), _num(c["cs"]),
                 _num(c["rss"]), *(c["transitions"][k] for k in ("cc", "cw", "wc", "ww")),
                 f"{c['unparsed_initial']}/{c['unparsed_final']}"]
                for s, c in corr.items()]
        fig, ax = plt.subplots(figsize=(6.5, 3.5))
        left = [0] * len(corr)
        for key, colour in (("cc", "#4c9a2a"), ("wc", "#9ad27a"), ("cw", "#e07b5a"), ("ww", "#b0b0b0")):
            vals = [c["transitions"][key] for c in corr.values()]
            ax.barh([labels[s] for s in corr], vals, left=left, color=colour,
                    label={"cc": "c→c", "wc": "w→c (fixed)", "cw": "c→w (broken)", "ww": "w→w"}[key])
            left = [a + b for a, b in zip(left, vals)]
        ax.set(xlabel="examples", title="What a second look fixed and broke")
        ax.legend(fontsize=7)
        out += ["<h2>Correction</h2>",
                html_table(["strategy", "Acc₁ %", "Acc₂ %", "Δ", "CL", "CS", "RSS", "c→c", "c→w", "w→c", "w→w",
                        "unparsed before/after"], rows),
                ("<p>Before = the strategy's first answer, after = its final answer. Unparseable answers count "
                 "as wrong here, as in accuracy.</p>"),
                fig_to_img(fig)]

    gaps = {s: m["verification"] for s, m in metrics.items() if m.get("verification")}
    if gaps:
        rows = [[labels[s], _pct(g["mean_sample_accuracy"]), _pct(g["selected_accuracy"]), _pct(g["gap"]),
                 _num(g["relative_gap"]), g["n_questions"], _num(g["sample_calibration"]["ece"]),
                 _num(g["sample_calibration"]["auroc"]), g["n_unscored"]] for s, g in gaps.items()]
        out += ["<h2>Generation–verification gap</h2>",
                html_table(["strategy", "mean sample acc %", "self-selected acc %", "gap (points)", "relative gap",
                        "questions", "score ECE", "score AUROC", "unscored samples"], rows),
                ("<p>Self-selected = the sample the model's own verifier scores highest (ties: expected "
                 "accuracy). ECE and AUROC are of the verifier's per-sample scores against the samples' "
                 "correctness; AUROC 0.5 is chance.</p>")]

    if len(scopes) > 1:
        base = next(iter(scopes))
        a = {t.example_id: bool(t.correct) for t in scopes[base]}
        rows = []
        for s, ts in list(scopes.items())[1:]:
            b = {t.example_id: bool(t.correct) for t in ts}
            mc, bs = mcnemar_exact(a, b), paired_bootstrap(a, b)
            rows.append([labels[s], _pct(mc["diff"]), f"{_pct(bs['ci_low'])} … {_pct(bs['ci_high'])}",
                         f"{mc['b_only']}/{mc['a_only']}", f"{mc['p_value']:.4f}"])
        out += [f"<h2>Paired tests against {html.escape(labels[base])}</h2>",
                html_table(["strategy", "Δ accuracy (points)", "paired bootstrap 95% CI", "only this / only base right",
                        "exact McNemar p"], rows)]
    return out


def write_report(path: str | Path, store, run_id: str) -> Path:
    run = store.get_run(run_id)
    metrics = store.metrics(run_id)
    scopes = {s: store.traces(run_id, s) for s in metrics if store.done_ids(run_id, s)}
    metrics = {s: metrics[s] for s in scopes}
    cfg = run["config"]
    head = (f"<h1>selfimprove · run {html.escape(run_id)}</h1><p>model <b>{html.escape(str(cfg.get('model')))}"
            f"</b> · task <b>{html.escape(str(cfg.get('task')))}</b> · split {html.escape(str(cfg.get('split')))}"
            f" · {len(next(iter(scopes.values()), []))} examples · selfimprove {html.escape(run['version'])}</p>")
    path = Path(path)
    path.write_text(page(f"selfimprove {run_id}", head + "".join(build_sections(scopes, metrics))),
                    encoding="utf-8")
    return path


STYLE = ("<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse;"
         "margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
         "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style>")


def page(title: str, body: str) -> str:
    """A self-contained HTML document."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}"
            f"</head><body>{body}</body></html>")
