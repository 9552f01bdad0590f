"""How well a run's self-verifiers separate right from wrong candidates: one Markdown row per strategy that
scores candidates (best-of-n and weighted best-of-n by any verifier, USC's selection, gated correction's
P(True), search's node values are left out).

    python scripts/verdict_spread.py RUN_ID [--store runs.db]

For every scored candidate with an answer the row pairs the verifier's score with whether that answer is
right (``task.check`` against the gold answer, read here for the analysis only): the candidates' count, how
many are right, the score's range, its mean on right and on wrong candidates, and the AUROC of score for
rightness (0.5: no separation). USC's score of a response is the probability of its number in the selection;
gated correction's is the P(True) of the initial answer. Self-refine's row counts the feedback replies that
said "no issues". Candidates with no answer (unparsed, truncated) are left out: the strategies never pick
them.
"""

from __future__ import annotations

import argparse
import statistics

from selfimprove.metrics.stats import auroc
from selfimprove.store.runs import RunStore
from selfimprove.tasks import get_task


def pairs(trace, check) -> list[tuple[float, bool]]:
    """(score, right) for each scored candidate with an answer in one trace."""
    steps, info = trace.steps, trace.info
    if "scores" in info and steps and steps[0].kind == "generate":
        return [(s, bool(check(a))) for a, s in zip(steps[0].answers, info["scores"])
                if a is not None and s is not None]
    select = next((s for s in steps if s.kind == "select" and (s.info or {}).get("probs")), None)
    if select is not None and steps[0].kind == "generate":
        probs = select.info["probs"]
        return [(probs[str(j + 1)], bool(check(a))) for j, a in enumerate(steps[0].answers)
                if a is not None and str(j + 1) in probs]
    trust = next((s for s in steps if s.kind == "trust"), None)
    if trust is not None and trust.info.get("p_true_initial") is not None \
            and trace.initial_answer is not None:
        return [(trust.info["p_true_initial"], bool(check(trace.initial_answer)))]
    return []


def row(scope: str, got: list[tuple[float, bool]]) -> str:
    right = [s for s, y in got if y]
    wrong = [s for s, y in got if not y]
    area = auroc([s for s, _ in got], [y for _, y in got])

    def mean(xs):
        return f"{statistics.fmean(xs):.3f}" if xs else "—"

    span = f"{min(s for s, _ in got):.3f}–{max(s for s, _ in got):.3f}"
    return (f"| {scope} | {len(got)} | {len(right)} | {span} | {mean(right)} | {mean(wrong)} | "
            f"{'—' if area is None else f'{area:.2f}'} |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_id")
    ap.add_argument("--store", help="run store (default: $SELFIMPROVE_HOME/runs.db)")
    args = ap.parse_args(argv)
    store = RunStore(args.store, readonly=True)
    config = store.get_run(args.run_id)["config"]
    task = get_task(config["task"], data=config.get("data"))
    gold = {e.id: e for e in task.examples(config.get("split", "test"))}
    print("| strategy | candidates | right | score range | mean score, right | mean score, wrong | AUROC |")
    print("|---|---|---|---|---|---|---|")
    notes = []
    for scope in store.scopes(args.run_id):
        got, feedback = [], []
        for t in store.traces(args.run_id, scope):
            got += pairs(t, lambda a, e=gold[t.example_id]: task.check(e, a))
            feedback += [bool(s.info.get("no_issues")) for s in t.steps if s.kind == "feedback"]
        if got:
            print(row(scope, got))
        if feedback:
            notes.append(f"{scope}: {sum(feedback)} of {len(feedback)} feedback replies said 'no issues'")
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
