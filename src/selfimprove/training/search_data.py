"""Training data from search trees and step labels: pure functions from traces to pairs, rows and PRM labels.

- ``sibling_pairs`` — MCTS-DPO (Xie et al. 2024, "Monte Carlo Tree Search Boosts Reasoning via Iterative
  Preference Learning", arXiv:2405.00451): for every expanded node of an MCTS tree, its child with the highest
  mean back-propagated value Q is chosen and the one with the lowest is rejected, when the gap is at least
  ``min_gap``; the prompt is the task prompt plus the parent's partial solution; chosen and rejected are
  one step
  each (``partial`` pairs: no EOS), or two finished last steps (a whole ending: with EOS).
- ``first_error_pairs`` — Step-DPO (Lai et al. 2024, "Step-DPO: Step-wise Preference Optimization for
  Long-chain Reasoning of LLMs", arXiv:2406.18629): in a wrong solution, the first step whose rollouts never
  reach the gold answer is rejected; chosen is the first step of a rollout from the same prefix that did
  reach it (from the empty prefix: the first step of a correct sample); a pair where one step ends the
  solution and the other does not is skipped and counted (EOS would follow one side only).
- ``tree_prm_rows`` — ReST-MCTS* (Zhang et al. 2024, arXiv:2406.03816) style PRM labels from a tree:
  along every
  finished path, each node's share of gold-correct answers among the finished paths and rollouts below it.

Every builder returns counts of what it skipped and why. All of them read gold answers (training only).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ..records import Example, Trace
from .preferences import PreferencePair, Provenance
from .prm import PRMRow, label_steps

TREE = "tree"
LABELS_STEP = "step-labels"
"""Step kind holding a trace's PRM rows (``info['rows']``: ``PRMRow`` dicts)."""
NO_PROV = Provenance()


def tree_nodes(trace: Trace) -> list[dict[str, Any]]:
    """The nodes of a search trace's ``tree`` step (empty when the trace has none)."""
    step = next((s for s in reversed(trace.steps) if s.kind == TREE), None)
    return list(step.info.get("nodes", [])) if step else []


def q_of(node: dict[str, Any]) -> float | None:
    return node["value_sum"] / node["visits"] if node.get("visits") else None


def sibling_pairs(
    traces: Sequence[Trace],
    prompts: dict[str, str],
    *,
    min_gap: float = 0.2,
    max_pairs: int | None = 4,
    prov: Provenance = NO_PROV,
    method: str = "mcts-dpo",
) -> tuple[list[PreferencePair], dict[str, Any]]:
    """Highest- vs lowest-Q children of every expanded node (``prompts``: example id → task prompt)."""
    pairs, skipped = [], Counter()
    for t in traces:
        nodes = tree_nodes(t)
        mine = []
        for parent in nodes:
            kids = [nodes[i] for i in parent["info"].get("children", []) if q_of(nodes[i]) is not None]
            kids = [k for k in kids if k["step"].strip()]
            if len(kids) < 2:
                if parent["info"].get("children"):
                    skipped["fewer_than_two_valued_children"] += 1
                continue
            hi = max(kids, key=q_of)  # max/min keep the first of ties
            lo = min(kids, key=q_of)
            gap = q_of(hi) - q_of(lo)
            if gap < min_gap or gap <= 0:
                skipped["gap_below_min"] += 1
                continue
            if hi["terminal"] != lo["terminal"]:
                skipped["one_finished_one_not"] += 1  # an EOS after one side only: not a like-for-like pair
                continue
            mine.append(
                (
                    gap,
                    PreferencePair(
                        prompt=prompts[t.example_id] + parent["prefix"],
                        chosen=hi["step"],
                        rejected=lo["step"],
                        example_id=t.example_id,
                        method=method,
                        judge="mcts-q",
                        chosen_score=q_of(hi),
                        rejected_score=q_of(lo),
                        chosen_answer=hi.get("answer"),
                        rejected_answer=lo.get("answer"),
                        partial=not hi["terminal"],
                        **_prov(prov),
                    ),
                )
            )
        mine.sort(key=lambda x: -x[0])  # the widest gaps first
        if max_pairs is not None and len(mine) > max_pairs:
            skipped["over_max_pairs"] += len(mine) - max_pairs
            mine = mine[:max_pairs]
        pairs += [p for _, p in mine]
    return pairs, {
        "examples": len(traces),
        "pairs": len(pairs),
        "skipped": dict(skipped),
        "examples_with_pairs": len({p.example_id for p in pairs}),
    }


def first_error_pairs(
    traces: Sequence[Trace],
    split: Callable[[str], list[str]],
    *,
    prov: Provenance = NO_PROV,
    method: str = "step-dpo",
) -> tuple[list[PreferencePair], dict[str, Any]]:
    """Step-DPO pairs from traces holding a ``step-labels`` step (labelled wrong solutions), the rollouts
    behind the labels (``rollout`` steps) and the verified ``generate`` step."""
    pairs, skipped = [], Counter()
    for t in traces:
        labels = next((s for s in t.steps if s.kind == LABELS_STEP), None)
        if labels is None:
            continue
        gen = next(s for s in t.steps if s.kind == "generate")
        rollouts = {s.prompt: s for s in t.steps if s.kind == "rollout"}
        correct_firsts = [_first(split, c.text) for c, v in zip(gen.completions, gen.verdicts) if v.correct]
        for d in labels.info["rows"]:
            row = PRMRow.from_dict(d)
            j = next((i for i, y in enumerate(row.labels) if y < 0.5), None)
            if j is None:
                skipped["no_wrong_step"] += 1
                continue
            prefix = "".join(row.steps[:j])
            if j == 0:
                good = correct_firsts
            else:
                roll = rollouts.get(row.prompt + prefix)
                ok = [] if roll is None else zip(roll.completions, _correct(roll))
                good = [_first(split, c.text) for c, right in ok if right]
            good = [g for g in good if g is not None and g[0] != row.steps[j] and g[0].strip()]
            if not good:
                skipped["no_correct_continuation"] += 1
                continue
            last = j == len(row.steps) - 1
            same_end = [g for g in good if g[1] == last]  # both end the solution (EOS after both) or neither
            if not same_end:
                skipped["one_finished_one_not"] += 1
                continue
            good = [g[0] for g in same_end]
            pairs.append(
                PreferencePair(
                    prompt=row.prompt + prefix,
                    chosen=good[0],
                    rejected=row.steps[j],
                    example_id=t.example_id,
                    method=method,
                    judge="gold-rollouts",
                    chosen_score=None,
                    rejected_score=row.shares[j],
                    partial=not last,
                    **_prov(prov),
                )
            )
    return pairs, {
        "examples": len(traces),
        "pairs": len(pairs),
        "skipped": dict(skipped),
        "examples_with_pairs": len({p.example_id for p in pairs}),
    }


def _first(split: Callable[[str], list[str]], text: str) -> tuple[str, bool] | None:
    """The first step of a continuation and whether it is also its last (None: no step)."""
    steps = split(text)
    return (steps[0], len(steps) == 1) if steps else None


def _correct(step) -> list[bool]:
    return [bool(x) for x in step.info.get("correct", [])] or [False] * len(step.completions)


def tree_prm_rows(
    trace: Trace, example: Example, task, prompt: str, rule: str = "some", round_idx: int = 0
) -> list[PRMRow]:
    """PRM rows along every finished path of a search tree: node k's share is the share of gold-correct
    answers
    among the finished paths and rollouts in its subtree (a finished node: its own answer)."""
    nodes = tree_nodes(trace)
    if not nodes:
        return []
    below: dict[int, list[bool]] = {}

    def collect(i: int) -> list[bool]:
        if i in below:
            return below[i]
        n = nodes[i]
        out = [bool(task.check(example, n["answer"]))] if n["terminal"] else []
        out += [
            bool(task.check(example, a)) for a in n["info"].get("rollout_answers", []) if not n["terminal"]
        ]
        for c in n["info"].get("children", []):
            out += collect(c)
        below[i] = out
        return out

    rows, seen = [], set()
    for leaf in (n for n in nodes if n["terminal"] and n["step"].strip()):
        path, i = [], leaf["id"]
        while nodes[i]["parent"] is not None:
            path.append(nodes[i])
            i = nodes[i]["parent"]
        path.reverse()
        if leaf["prefix"] in seen:
            continue
        seen.add(leaf["prefix"])
        shares = [sum(collect(n["id"])) / len(collect(n["id"])) for n in path]
        rows.append(
            PRMRow(
                prompt,
                [n["step"] for n in path],
                label_steps(shares, rule),
                example.id,
                rule,
                shares,
                round_idx,
            )
        )
    return rows


def _prov(prov: Provenance) -> dict[str, Any]:
    return {"round_idx": prov.round_idx, "model": prov.model, "seed": prov.seed}


__all__ = ["first_error_pairs", "q_of", "sibling_pairs", "tree_nodes", "tree_prm_rows"]
