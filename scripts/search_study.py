"""Study: accuracy versus generated tokens of greedy, self-consistency, best-of-n (P(True)), beam, MCTS and
DVTS at matched budgets on the same problems, with paired tests (the search results page).

Budgets are set in *generated tokens per example* (expansions, rollouts and self-evaluation rationales
included; prompt tokens are reported beside them). Each strategy's settings for each budget are in
``BUDGETS``; the table prints the tokens each actually spent, so the match is visible rather than assumed.
Self-consistency at n = 4 / 8 / 16 is the majority of the first n samples of one n = 16 pool, and best-of-n at
n = 2 / 3 / 6 the best-scored of the first n samples of one n = 6 pool (the hf backend seeds sample i by
(seed, prompt, i), so a run at the smaller n would draw exactly those samples); their token counts are those
of the first n samples and their verifications.

Each search run is scored under every final rule it records (``finals``: beam and DVTS by best value, majority
and value-weighted vote; MCTS by most visits, best value and majority), rows ``name:final=...`` of the same
trees and tokens. Paired tests per budget (pairs = (seed, example); an unparseable answer counts as wrong):
each search strategy against self-consistency and against best-of-n at the same budget — exact McNemar p and
the paired-bootstrap 95 % CI of the difference in points.

    python scripts/search_study.py --model tiny-verify --task arithmetic:verify=2 --split test-hard \
        --limit 100 --seeds 0 --out docs/results/search-study.json

With ``--prm DIR`` (a PRM trained by ``scripts/prm_study.py``) it adds, per budget, best-of-n and weighted
best-of-n by the PRM over the *same* first n samples as self-consistency (the PRM generates nothing, so they
spend SC's generated tokens exactly; aggregation ``last`` and ``min``), and beam search with the PRM as its
step value (``beam-prm``), each tested against SC and best-of-n (P(True)).

Not covered: wall time (see ``bench/bench_search.py``), other models (pass ``--model``).
"""

from __future__ import annotations

import argparse
import json
import time

BUDGETS = {
    "B1": {"sc": 4, "bon": 2, "beam": "beam:beams=2,samples=2,value=likelihood",
           "mcts": "mcts:iterations=3,k=2,rollouts=1", "dvts": "dvts:subtrees=2,width=2,value=likelihood"},
    "B2": {"sc": 8, "bon": 3, "beam": "beam:beams=2,samples=4,value=likelihood",
           "mcts": "mcts:iterations=6,k=2,rollouts=1", "dvts": "dvts:subtrees=4,width=2,value=likelihood"},
    "B3": {"sc": 16, "bon": 6, "beam": "beam:beams=4,samples=4,value=likelihood",
           "mcts": "mcts:iterations=12,k=2,rollouts=1", "dvts": "dvts:subtrees=4,width=4,value=likelihood"},
}
"""Settings per budget level; 'sc' and 'bon' are sample counts taken from one pool."""
SEARCH = ("beam", "mcts", "dvts")
COMPARED = (*SEARCH, "bon-prm", "wbon-prm", "beam-prm")
"""Rows tested against self-consistency and best-of-n (P(True)) at the same budget."""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny-verify")
    p.add_argument("--task", default="arithmetic:verify=2")
    p.add_argument("--split", default="test-hard")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--chunk", type=int, default=50, help="examples per strategy call")
    p.add_argument("--budgets", nargs="+", default=list(BUDGETS), help="budget levels to run (default: all)")
    p.add_argument("--out", help="write every number as JSON here")
    p.add_argument("--prm", help="a trained PRM directory: adds best-of-n / weighted best-of-n / beam by "
                                 "the PRM")
    p.add_argument("--no-search", action="store_true", help="skip beam / MCTS / DVTS (the PRM rows stay)")
    p.add_argument("--combine", nargs="+", help="no run: pool the per-example results of these --out files "
                                                "(one per seed, or per seed and budget) into one table")
    p.add_argument("--plot", help="also draw accuracy against generated tokens per strategy family over the "
                                  "budgets (a PNG) here")
    args = p.parse_args(argv)
    from selfimprove.cli.main import quiet_third_party

    quiet_third_party()  # no transformers progress bars or warnings, as on the command line
    if args.combine:
        rows = combine(args.combine)
        with open(args.combine[0]) as f:  # the runs' model, task and split name the table and figure
            ran = json.load(f).get("args", {})
        for key in ("model", "task", "split", "limit"):
            setattr(args, key, ran.get(key, getattr(args, key)))
        args.seeds = sorted({s for row in rows.values() for s, _ in row["correct"]})
        report = summarise(rows)
        print_tables(report, args)
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"args": vars(args), "rows": report}, f, indent=1)
        if args.plot:
            plot_curves(report, args.plot, title(args, rows))
        return 0

    import torch

    from selfimprove.backends import get_backend
    from selfimprove.tasks import get_task

    torch.set_num_threads(1)
    task = get_task(args.task)
    examples = task.examples(args.split)[: args.limit]
    backend = get_backend(args.model)
    rows: dict[tuple[str, str], dict] = {}  # (budget, strategy) -> {"correct": {(seed, id): bool}, tokens...}
    for seed in args.seeds:
        for label, result in run_seed(backend, task, examples, seed, args).items():
            row = rows.setdefault(label, {"correct": {}, "completion": 0, "prompt": 0, "n": 0, "wall_s": 0.0,
                                          "unparseable": 0, "spec": result["spec"]})
            row["correct"].update({(seed, k): v for k, v in result["correct"].items()})
            for key in ("completion", "prompt", "n", "wall_s", "unparseable"):
                row[key] += result[key]
    report = summarise(rows)
    print_tables(report, args)
    if args.plot:
        plot_curves(report, args.plot, title(args, rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "fingerprint": backend.fingerprint(), "rows": report,
                       "raw": [{"budget": b, "strategy": n,
                                **{k: v for k, v in row.items() if k != "correct"},
                                "correct": [[s, i, c] for (s, i), c in row["correct"].items()]}
                               for (b, n), row in rows.items()]}, f, indent=1)
    return 0


def combine(paths) -> dict:
    """The rows of several ``--out`` files pooled: per-(seed, example) results merged, tokens and counts
    added. Files may hold different seeds, or different budgets of one seed: a row two files both hold for
    the same (seed, example) pairs (greedy, run by every job) is counted once, and only if both files agree on
    it; a row that overlaps another's pairs only in part, or disagrees, is refused."""
    rows: dict[tuple[str, str], dict] = {}
    for path in paths:
        with open(path) as f:
            raw = json.load(f)["raw"]
        for r in raw:
            row = rows.setdefault((r["budget"], r["strategy"]), {"correct": {}, "completion": 0, "prompt": 0,
                                                                 "n": 0, "wall_s": 0.0, "unparseable": 0,
                                                                 "spec": r["spec"]})
            new = {(s, i): c for s, i, c in r["correct"]}
            seen = new.keys() & row["correct"].keys()
            if seen:
                if seen != new.keys() or any(row["correct"][k] != new[k] for k in seen):
                    raise SystemExit(f"{path}: row {r['budget']} {r['strategy']} repeats (seed, example) "
                                     "pairs another file holds, with different results or in part; pass "
                                     "each seed's budgets once")
                continue  # the same deterministic row again (greedy in every job of one seed)
            row["correct"].update(new)
            for key in ("completion", "prompt", "n", "wall_s", "unparseable"):
                row[key] += r[key]
    return rows


SERIES = {"self-consistency": "self-consistency (majority)", "best-of-n": "best-of-n (P(True))",
          "beam:final=value": "beam (best value)", "dvts:final=value": "DVTS (best value)",
          "mcts:final=visits": "MCTS (most visits)", "mcts:final=majority": "MCTS (majority)",
          "bon-prm:aggregate=last": "best-of-n (PRM, last)",
          "wbon-prm:aggregate=last": "weighted best-of-n (PRM)", "beam-prm": "beam (PRM value)"}
"""The curves drawn by ``--plot``: report rows (strategy name) and their legend labels."""


def curves(report: list[dict]) -> dict[str, list[tuple[float, float, float, float, str]]]:
    """Per ``SERIES`` row present: (generated tokens / example, accuracy, CI low, CI high, budget) at every
    budget, sorted by budget; and greedy's single point under "greedy"."""
    out: dict[str, list] = {}
    for e in sorted(report, key=lambda e: e["budget"]):
        name = "greedy" if e["strategy"] == "greedy" else e["strategy"]
        if name == "greedy" or name in SERIES:
            out.setdefault(name, []).append((e["completion_per_ex"], e["accuracy"], *e["ci"], e["budget"]))
    return {k: out[k] for k in ("greedy", *SERIES) if k in out}  # the legend in SERIES' order


def plot_curves(report: list[dict], path: str, heading: str) -> None:
    """Accuracy (95 % Wilson CI) against generated tokens per example, one line per strategy family over the
    budgets, greedy as a point; written as a PNG to ``path``."""
    from matplotlib.ticker import ScalarFormatter

    from selfimprove.report.plots import _figure, png

    fig, ax = _figure(7.5, 4.6)
    for name, pts in curves(report).items():
        xs, ys = [p[0] for p in pts], [100 * p[1] for p in pts]
        err = [[100 * (p[1] - p[2]) for p in pts], [100 * (p[3] - p[1]) for p in pts]]
        style = {"fmt": "k*", "ms": 10} if name == "greedy" else {"fmt": "-o", "ms": 4, "lw": 1.2,
                                                                  "alpha": 0.85}
        ax.errorbar(xs, ys, yerr=err, capsize=2, label=SERIES.get(name, name), **style)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set(xlabel="generated tokens per example (log scale; rollouts and verification included)",
           ylabel="accuracy % (95 % CI)", title=heading)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the lines cross everywhere
    with open(path, "wb") as f:
        f.write(png(fig))


def title(args, rows: dict) -> str:
    """The figure's heading: model, split, problems and seeds of the pooled rows."""
    pairs = next(iter(rows.values()))["correct"].keys()
    seeds = sorted({s for s, _ in pairs})
    problems = len({i for _, i in pairs})
    return (f"{args.model} · {args.split} · {problems} problems × seeds {', '.join(map(str, seeds))}: "
            "accuracy versus generated tokens")


def run_seed(backend, task, examples, seed: int, args) -> dict:
    from selfimprove.strategies import get_strategy

    out = {}
    T = args.temperature
    greedy = timed(backend, task, examples, get_strategy("greedy"), args.chunk)
    out[("B0", "greedy")] = tally(greedy, "greedy", lambda t: t.final_answer, lambda t: tokens(t.steps))
    n_sc = max(BUDGETS[b]["sc"] for b in args.budgets)
    n_bon = max(BUDGETS[b]["bon"] for b in args.budgets)
    sc = timed(backend, task, examples,
               get_strategy(f"self-consistency:n={n_sc},temperature={T},seed={seed}"),
               args.chunk)
    bon = timed(backend, task, examples,
                get_strategy(f"best-of-n:n={n_bon},verifier=ptrue,temperature={T},seed={seed}"), args.chunk)
    for budget, cfg in BUDGETS.items():
        if budget not in args.budgets:
            continue
        out[(budget, "self-consistency")] = tally(sc, f"self-consistency:n={cfg['sc']}",
                                                  lambda t, n=cfg["sc"]: sc_answer(task, t, n),
                                                  lambda t, n=cfg["sc"]: tokens(t.steps[:1], first=n))
        out[(budget, "best-of-n")] = tally(bon, f"best-of-n:n={cfg['bon']},verifier=ptrue",
                                           lambda t, n=cfg["bon"]: bon_answer(t, n),
                                           lambda t, n=cfg["bon"]: bon_tokens(t, n))
        if args.prm:
            out.update(prm_rows(task, sc, budget, cfg, args, seed))
        for name in () if args.no_search else SEARCH:
            spec = f"{cfg[name]},temperature={T},seed={seed}"
            traces = timed(backend, task, examples, get_strategy(spec), args.chunk)
            for how in traces["traces"][0].steps[-1].info["finals"]:  # every final rule on the same trees
                out[(budget, f"{name}:final={how}")] = tally(traces, f"{cfg[name]},final={how}",
                                                             lambda t, h=how: t.steps[-1].info["finals"][h],
                                                             lambda t: tokens(t.steps))
    return out


def prm_rows(task, sc: dict, budget: str, cfg: dict, args, seed: int) -> dict:
    """Best-of-n and weighted best-of-n by the PRM over the first n samples of the SC pool, and beam with the
    PRM as step value, at this budget."""
    from selfimprove.strategies import get_strategy
    from selfimprove.strategies.weighted import weighted_vote
    from selfimprove.training.prm_score import aggregate
    from selfimprove.verifiers.prm import load_scorer

    scorer, fmt, n = load_scorer(args.prm), task.step_format(), cfg["sc"]
    if "prm_steps" not in sc:  # score every parseable sample of the pool once
        sc["prm_steps"] = {}
        for t in sc["traces"]:
            gen = t.steps[0]
            keep = [j for j, a in enumerate(gen.answers) if a is not None]
            texts = [fmt.split(gen.completions[j].text) for j in keep]
            scores = scorer.score([gen.prompt] * len(keep), texts)
            sc["prm_steps"][t.example_id] = dict(zip(keep, scores))
    out = {}
    for how in ("last", "min"):
        def pick(t, how=how, weighted=False):
            answers, per = t.steps[0].answers[:n], sc["prm_steps"][t.example_id]
            scores = [aggregate(per[j], how) if j in per else None for j in range(len(answers))]
            ranked = [j for j, x in enumerate(scores) if x is not None]
            if not ranked:
                return answers[0]
            if weighted:
                votes = [a if x is not None else None for a, x in zip(answers, scores)]
                return weighted_vote(votes, [x or 0.0 for x in scores], task.equivalent)[0]
            return answers[max(ranked, key=lambda j: scores[j])]

        spend = lambda t: tokens(t.steps[:1], first=n)  # SC's own samples: the same tokens
        out[(budget, f"bon-prm:aggregate={how}")] = tally(sc, f"best-of-n:n={n},verifier=prm;aggregate={how}",
                                                           pick, spend)
        out[(budget, f"wbon-prm:aggregate={how}")] = tally(
            sc, f"weighted-best-of-n:n={n},verifier=prm;aggregate={how}",
            lambda t, how=how: pick(t, how, weighted=True), spend)
    beam_spec = cfg["beam"].replace("value=likelihood", "value=prm")
    spec = f"{beam_spec},prm={args.prm},temperature={args.temperature}"
    beam = timed(sc["backend"], task, list(sc["examples"].values()), get_strategy(f"{spec},seed={seed}"),
                 args.chunk)
    out[(budget, "beam-prm")] = tally(beam, spec.replace(args.prm, "PRM"), lambda t: t.final_answer,
                                      lambda t: tokens(t.steps))
    return out


def timed(backend, task, examples, strategy, chunk: int) -> dict:
    from selfimprove.strategies.base import score_traces

    t0, traces = time.perf_counter(), []
    for i in range(0, len(examples), chunk):
        part = examples[i:i + chunk]
        traces += score_traces(task, part, strategy.run(backend, task, part))
    return {"traces": traces, "wall_s": time.perf_counter() - t0, "examples": {e.id: e for e in examples},
            "task": task, "backend": backend}


def tally(run: dict, spec: str, answer, spend) -> dict:
    task, by_id = run["task"], run["examples"]
    correct, completion, prompt, unparseable = {}, 0, 0, 0
    for t in run["traces"]:
        a = answer(t)
        unparseable += a is None
        correct[t.example_id] = bool(task.check(by_id[t.example_id], a))  # unparseable counts as wrong
        c, p = spend(t)
        completion, prompt = completion + c, prompt + p
    return {"spec": spec, "correct": correct, "completion": completion, "prompt": prompt,
            "n": len(run["traces"]),
            "wall_s": run["wall_s"], "unparseable": unparseable}


def tokens(steps, first: int | None = None) -> tuple[int, int]:
    """(completion, prompt) tokens of ``steps`` (the first ``first`` completions of each, when given)."""
    c = p = 0
    for s in steps:
        comps = s.completions[:first] if first else s.completions
        if comps:
            p += comps[0].prompt_tokens
            c += sum(x.completion_tokens for x in comps)
    return c, p


def sc_answer(task, trace, n: int):
    from selfimprove.answers import majority

    return majority(trace.steps[0].answers[:n], task.equivalent)[0]


def bon_answer(trace, n: int):
    scores, answers = trace.info["scores"][:n], trace.steps[0].answers[:n]
    ranked = [j for j, s in enumerate(scores) if s is not None]
    if not ranked:
        return answers[0]
    return answers[max(ranked, key=lambda j: scores[j])]


def bon_tokens(trace, n: int) -> tuple[int, int]:
    """The first n samples, and the verification steps of those among them that were scored."""
    gen = trace.steps[0]
    scored = sum(a is not None for a in gen.answers[:n])  # only parseable samples are verified, in order
    verifies = [s for s in trace.steps[1:] if s.kind == "verify"][:scored]
    c, p = tokens([gen], first=n)
    vc, vp = tokens(verifies)
    return c + vc, p + vp


def summarise(rows: dict) -> list[dict]:
    from selfimprove.metrics.stats import mcnemar_exact, paired_bootstrap, wilson_ci

    out = []
    for (budget, name), row in sorted(rows.items()):
        n = row["n"]
        acc = sum(row["correct"].values()) / n
        entry = {"budget": budget, "strategy": name, "spec": row["spec"], "n": n, "accuracy": acc,
                 "ci": wilson_ci(sum(row["correct"].values()), n), "completion_per_ex": row["completion"] / n,
                 "prompt_per_ex": row["prompt"] / n, "wall_s": row["wall_s"],
                 "unparseable": row["unparseable"]}
        if name.split(":")[0] in COMPARED:
            for ref in ("self-consistency", "best-of-n"):
                other = rows[(budget, ref)]["correct"]
                m = mcnemar_exact(other, row["correct"])
                b = paired_bootstrap(other, row["correct"], seed=0)
                entry[f"vs_{ref}"] = {"diff": m["diff"], "p": m["p_value"], "ci": (b["ci_low"], b["ci_high"]),
                                      "a_only": m["a_only"], "b_only": m["b_only"]}
        out.append(entry)
    return out


def print_tables(report: list[dict], args) -> None:
    print(
        f"model {args.model} · task {args.task} · split {args.split} · n = {args.limit} · seeds {args.seeds}")
    print("| budget | strategy | settings | accuracy % (95 % CI) | generated tokens / ex | prompt "
          "tokens / ex | vs SC, points (p) | vs best-of-n, points (p) |")
    print("|---|---|---|---|---|---|---|---|")
    for e in report:
        lo, hi = e["ci"]
        cells = []
        for ref in ("self-consistency", "best-of-n"):
            v = e.get(f"vs_{ref}")
            cells.append("" if v is None else f"{100 * v['diff']:+.1f} ({v['ci'][0] * 100:+.1f}…"
                                              f"{v['ci'][1] * 100:+.1f}; p = {v['p']:.3g})")
        print(f"| {e['budget']} | {e['strategy']} | `{e['spec']}` | {100 * e['accuracy']:.1f} "
              f"({100 * lo:.0f}–{100 * hi:.0f}) | {e['completion_per_ex']:.0f} | {e['prompt_per_ex']:.0f} | "
              f"{cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    raise SystemExit(main())
