"""Monte Carlo tree search over reasoning steps, with all four phases.

As used for reasoning by Xie et al. 2024, "Monte Carlo Tree Search Boosts Reasoning via Iterative Preference
Learning" (arXiv 2405.00451) and ReST-MCTS* (Zhang et al. 2024, arXiv 2406.03816); selection rules from Kocsis
& Szepesvári 2006 (UCT, "Bandit based Monte-Carlo Planning") and Silver et al. 2017 (PUCT, "Mastering the game
of Go without human knowledge"). One iteration, for every example's tree at once (batched across examples):

1. **Selection**: from the root, descend to an unexpanded or finished node by UCT, Q + c·sqrt(ln N_parent /
   N), or PUCT, Q + c·P·sqrt(N_parent) / (1 + N), with Q the mean back-propagated value and P the sibling
   prior from each step's length-normalised likelihood; an unvisited child is taken first.
2. **Expansion**: the selected node samples ``k`` next steps (every example's node in one generate call).
3. **Simulation / value estimate**: each new child gets the step value — by default ``rollout``: m completions
   from the child to the end, valued by agreement with the majority answer (no gold); or likelihood,
   self-eval, xie. A finished child is valued the same way (its own answer is its rollout).
4. **Back-propagation**: each child's value is added to the child and every ancestor (one visit each).

A selected node that is already finished is back-propagated again with its value (no tokens spent). The search
stops after ``iterations`` iterations per example (the node budget is iterations · k) or when every path is
finished. The final answer: ``visits`` — descend by most visits to a finished node (a walk that stops at an
unfinished node takes the majority of its rollout answers, else the best-valued finished path, recorded as a
fallback); ``value`` — the finished path with the highest mean value Q (with no finished path, the majority of
the rollouts of the node with the highest Q); ``majority`` — the most common answer over
finished paths and every rollout.

Not covered: virtual loss (several selections per tree per iteration), progressive widening, transpositions
(identical prefixes reached by different paths are different nodes), a learned value network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..answers import majority
from ..records import Example, Trace
from .base import make_trace
from .tree import (
    SearchSettings,
    Tree,
    TreeNode,
    backpropagate,
    choose,
    evaluate,
    expand,
    first_answer,
    softmax_priors,
    tree_step,
)

SELECTIONS = ("uct", "puct")
MCTS_FINALS = ("visits", "value", "majority")


@dataclass(frozen=True)
class MCTS(SearchSettings):
    """Monte Carlo tree search with selection, expansion, simulation and back-propagation."""

    value: str = "rollout"
    """Step value of a new node (default: rollouts to the end, agreement with their majority)."""
    rollouts: int = 2
    """Rollouts per new node for value=rollout."""
    iterations: int = 8
    """Selection–expansion–evaluation–back-propagation rounds per example (node budget = iterations × k)."""
    k: int = 3
    """Children sampled per expansion."""
    selection: str = "uct"
    """uct or puct."""
    c: float = 1.0
    """Exploration constant of the selection rule."""
    final: str = "visits"
    """visits, value or majority (see the module docstring)."""
    name = "mcts"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.iterations < 1 or self.k < 1:
            raise ValueError(f"iterations and k must be >= 1, got {self.iterations} and {self.k}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be uct or puct, got {self.selection!r}")
        if self.c < 0:
            raise ValueError(f"c must be >= 0, got {self.c}")
        if self.final not in MCTS_FINALS:
            raise ValueError(f"final must be one of {', '.join(MCTS_FINALS)}, got {self.final!r}")

    def run(self, backend, task, examples: Sequence[Example], step_value=None) -> list[Trace]:
        """One trace per example. ``step_value`` replaces the configured value (training code passes the
        gold-reading ``rollout-gold`` value this way; inference never does)."""
        fmt = self.step_format(task)
        value = step_value if step_value is not None else self.make_value(backend, task, fmt)
        trees = [Tree(e, task.prompt(e)) for e in examples]
        for it in range(self.iterations):
            frontier = []
            for t in trees:
                leaf = select(t, self.selection, self.c)
                if leaf is None:
                    continue  # every path of this tree is finished and valued None: nothing left to do
                if leaf.terminal:
                    backpropagate(t, leaf, leaf.value)
                else:
                    frontier.append((t, leaf, self.k))
            if not frontier:
                continue
            children = expand(backend, task, fmt, self, frontier, it)
            new = [(t, n) for (t, _, _), kids in zip(frontier, children) for n in kids]
            evaluate(value, new, self.seed_for(2, it))
            for (t, leaf, _), kids in zip(frontier, children):
                for n, p in zip(kids, softmax_priors(kids)):
                    n.info["prior"] = p
                for n in kids:
                    backpropagate(t, n, n.value)
                leaf.info["expanded_at"] = it
        return [self._trace(task, t) for t in trees]

    def _trace(self, task, tree: Tree) -> Trace:
        chosen, answer, conf, info = final_answer(task, tree, self.final)
        finals = {how: final_answer(task, tree, how)[1] for how in MCTS_FINALS}  # every rule, for comparison
        steps = [*tree.steps, tree_step(tree, chosen, self.final, finals=finals, **info)]
        return make_trace(tree.example, self.name, steps, initial_answer=first_answer(tree),
                          final_answer=answer,
                          confidence=conf, nodes=len(tree.nodes), value=self.value, **info)


def select(tree: Tree, rule: str = "uct", c: float = 1.0) -> TreeNode | None:
    """Descend from the root to the node to expand (unexpanded, unfinished) or to a finished node to re-visit.
    A node whose children all finished with value None is returned to be expanded again; None only when the
    root itself is finished."""
    node = tree.nodes[0]
    while node.children and not node.terminal:
        kids = [tree.nodes[i] for i in node.children]
        live = [n for n in kids if not (n.terminal and n.value is None)]
        if not live:
            return node  # every child finished without a value: sample more children here
        node = max(live, key=lambda n: score(n, node.visits, rule, c))  # max keeps the first of ties
    return None if node.terminal and node.value is None else node


def score(node: TreeNode, parent_visits: int, rule: str, c: float) -> float:
    """The selection score of a child: UCT or PUCT; an unvisited child scores +inf under UCT."""
    q = node.q
    if rule == "uct":
        if not node.visits:
            return math.inf
        return q + c * math.sqrt(math.log(max(parent_visits, 1)) / node.visits)
    prior = node.info.get("prior", 1.0)
    return (q if q is not None else 0.0) + c * prior * math.sqrt(parent_visits) / (1 + node.visits)


def final_answer(task, tree: Tree, how: str) -> tuple[TreeNode | None, str | None, float | None, dict]:
    """The answer of the search: by most visits, best mean value, or majority (see the module docstring)."""
    leaves = tree.leaves()
    if how == "majority":
        answers = [n.answer for n in leaves] + [a for n in tree.nodes if not n.terminal
                                                for a in n.info.get("rollout_answers", [])]
        winner, votes, _ = majority(answers, task.equivalent)
        chosen = next((n for n in leaves if winner is not None and task.equivalent(n.answer, winner)), None)
        return chosen, winner, (votes / len(answers) if answers else None), {"leaves": len(leaves),
                                                                            "votes": len(answers)}
    if how == "value":
        valued = [n for n in leaves if n.q is not None]
        if valued:
            best = max(valued, key=lambda n: n.q)
            return best, best.answer, best.q, {"leaves": len(leaves)}
        visited = [n for n in tree.nodes[1:] if n.q is not None]
        node = max(visited, key=lambda n: n.q) if visited else tree.nodes[0]  # no finished path yet
    else:
        node = tree.nodes[0]
        while node.children and not node.terminal:
            node = max((tree.nodes[i] for i in node.children), key=lambda n: (n.visits, n.q or 0.0))
        if node.terminal:
            return node, node.answer, node.q, {"leaves": len(leaves)}
    rollout = [a for a in node.info.get("rollout_answers", []) if a is not None]
    if rollout:
        winner, votes, _ = majority(rollout, task.equivalent)
        return node, winner, votes / len(node.info["rollout_answers"]), {"leaves": len(leaves),
                                                                          "fallback": "rollouts"}
    chosen, answer, conf, info = choose(task, leaves, "value")
    return chosen, answer, conf, {**info, "fallback": "best-value leaf"}
