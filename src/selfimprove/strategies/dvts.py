"""Diverse verifier tree search (DVTS): independent subtrees, each greedy by the step value.

As described by Beeching, Tunstall & Rush 2024, "Scaling test-time compute with open models" (the
search-and-learn recipes), after Snell et al. 2024, "Scaling LLM Test-Time Compute Optimally can be More
Effective than Scaling Model Parameters" (arXiv 2408.03314): beam search spends its budget on the few paths
the verifier likes early and collapses onto them; DVTS splits the same budget into ``subtrees`` independent
searches. The root samples ``subtrees × width`` first steps (one call) and hands ``width`` of them to each
subtree; every layer, each subtree keeps only its best-valued new node and, if that path is unfinished,
expands it into ``width`` children (every subtree of every example in one generate call). Each subtree ends
with one finished path; the final answer is the best-valued one (``final=value``), or the majority /
value-weighted vote over the subtrees.

Not covered: a process reward model as the value (any step value here: likelihood, self-eval, xie, rollout);
search-and-learn's lookahead rollouts inside DVTS. Two subtrees that reach the same partial solution sample
the same continuations (the hf backend seeds by prompt); the trace shows it as equal prefixes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..records import Example, Trace
from .base import make_trace
from .tree import (
    FINALS,
    SearchSettings,
    Tree,
    TreeNode,
    choose,
    evaluate,
    expand,
    first_answer,
    tree_step,
)


@dataclass(frozen=True)
class DVTS(SearchSettings):
    """Independent subtrees, each expanding only its best node."""

    subtrees: int = 4
    """Independent subtrees per example (paths in the end)."""
    width: int = 4
    """Children sampled per expansion of a subtree's best node."""
    final: str = "value"
    """value, majority or weighted over the subtrees' finished paths."""
    name = "dvts"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.subtrees < 1 or self.width < 1:
            raise ValueError(f"subtrees and width must be >= 1, got {self.subtrees} and {self.width}")
        if self.final not in FINALS:
            raise ValueError(f"final must be one of {', '.join(FINALS)}, got {self.final!r}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        fmt = self.step_format(task)
        value = self.make_value(backend, task, fmt)
        trees = [Tree(e, task.prompt(e)) for e in examples]
        # The root's first steps, split among the subtrees: subtree s gets samples [s*width, (s+1)*width).
        firsts = expand(backend, task, fmt, self,
                        [(t, t.nodes[0], self.subtrees * self.width) for t in trees], 0)
        evaluate(value, [(t, n) for t, kids in zip(trees, firsts) for n in kids], self.seed_for(2, 0))
        groups = [_split_root(t, kids, self.subtrees, self.width) for t, kids in zip(trees, firsts)]
        heads: list[list[TreeNode | None]] = [[_best(g) for g in gs] for gs in groups]
        for layer in range(1, self.max_steps):
            frontier = [(t, h, self.width) for t, hs in zip(trees, heads) for h in hs
                        if h is not None and not h.terminal]
            if not frontier:
                break
            children = expand(backend, task, fmt, self, frontier, layer)
            evaluate(value, [(t, n) for (t, _, _), kids in zip(frontier, children) for n in kids],
                     self.seed_for(2, layer))
            best = {id(h): _best(kids) for (_, h, _), kids in zip(frontier, children)}
            heads = [[best.get(id(h), h) if h is not None and not h.terminal else h for h in hs]
                     for hs in heads]
        return [self._trace(task, t, [h for h in hs if h is not None]) for t, hs in zip(trees, heads)]

    def _trace(self, task, tree: Tree, heads: list[TreeNode]) -> Trace:
        done = [h for h in heads if h.terminal]
        chosen, answer, conf, info = choose(task, done, self.final)
        finals = {how: choose(task, done, how)[1] for how in FINALS}  # every rule, for comparison
        steps = [*tree.steps, tree_step(tree, chosen, self.final, subtrees=[h.id for h in heads],
                                        finals=finals,
                                        **info)]
        return make_trace(tree.example, self.name, steps, initial_answer=first_answer(tree),
                          final_answer=answer,
                          confidence=conf, nodes=len(tree.nodes), value=self.value, **info)


def _split_root(tree: Tree, kids: list[TreeNode], subtrees: int, width: int) -> list[list[TreeNode]]:
    """Hand the root's distinct first steps to the subtrees in turn (merged duplicates leave a subtree
    fewer)."""
    groups: list[list[TreeNode]] = [[] for _ in range(subtrees)]
    for j, n in enumerate(kids):
        groups[j % subtrees].append(n)
        n.info["subtree"] = j % subtrees
    return groups


def _best(nodes: Sequence[TreeNode]) -> TreeNode | None:
    """The best-valued node (None values last; ties: the first), marked as kept."""
    if not nodes:
        return None
    best = max(nodes, key=lambda n: (n.value is not None, n.value or 0.0))
    best.info["kept"] = True
    best.visits = 1 if best.value is not None else 0
    return best
