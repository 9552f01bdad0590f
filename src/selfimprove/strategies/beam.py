"""Stochastic step-level beam search guided by a step value (Xie et al. 2023, "Decomposition Enhances
Reasoning via Self-Evaluation Guided Decoding", arXiv 2305.00633).

Each layer, every active beam samples ``samples`` next steps (all beams of all examples in one generate call);
each candidate is valued (default: the paper's likelihood^(1−λ) · self-eval^λ); then ``beams`` candidates per
example are drawn *without replacement* with probability ∝ value^(1/τ), τ = ``tau`` · ``decay``^layer (the
paper's temperature-annealed stochastic selection; ``tau=0`` is deterministic top-k). A drawn candidate that
finished its path keeps its slot as a finished beam, so an example never holds more than ``beams`` paths, and
the search ends when every slot is finished or ``max_steps`` is reached. The final answer is the finished path
with the highest value (``final=value``, the paper's choice), or the majority / value-weighted vote over
finished paths.

Differences from the paper: a candidate's value scores the whole partial solution (path likelihood normalised
by length, P(True) of the text so far) rather than a product of per-step factors; candidates whose value is
None are drawn only after every valued one. Not covered: the paper's few-shot "is this step correct" prompts
with multiple-choice self-evaluation (P(True) here uses the task's own verify format).
"""

from __future__ import annotations

import math
import random
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
class Beam(SearchSettings):
    """Self-evaluation guided stochastic beam search over steps."""

    beams: int = 4
    """Beam width k: paths kept per example."""
    samples: int = 4
    """Next steps sampled per active beam per layer."""
    tau: float = 0.5
    """Selection temperature τ (0: keep the top-k values deterministically)."""
    decay: float = 0.5
    """τ is multiplied by this every layer (the paper's annealing α)."""
    final: str = "value"
    """How the answer is chosen among finished paths: value, majority or weighted."""
    name = "beam"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beams < 1 or self.samples < 1:
            raise ValueError(f"beams and samples must be >= 1, got {self.beams} and {self.samples}")
        if self.tau < 0 or not 0 < self.decay <= 1:
            raise ValueError(f"tau must be >= 0 and decay in (0, 1], got {self.tau} and {self.decay}")
        if self.final not in FINALS:
            raise ValueError(f"final must be one of {', '.join(FINALS)}, got {self.final!r}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        fmt = self.step_format(task)
        value = self.make_value(backend, task, fmt)
        trees = [Tree(e, task.prompt(e)) for e in examples]
        active: list[list[TreeNode]] = [[t.nodes[0]] for t in trees]
        finished: list[list[TreeNode]] = [[] for _ in trees]
        rngs = [random.Random(self.seed_for(3, i)) for i in range(len(trees))]
        for layer in range(self.max_steps):
            frontier = [(t, n, self.samples) for t, nodes in zip(trees, active) for n in nodes]
            if not frontier:
                break
            children = expand(backend, task, fmt, self, frontier, layer)
            new: dict[int, list[TreeNode]] = {}
            for (t, _, _), kids in zip(frontier, children):
                new.setdefault(id(t), []).extend(kids)
            evaluate(value, [(t, n) for t in trees for n in new.get(id(t), [])], self.seed_for(2, layer))
            tau = self.tau * self.decay ** layer
            for i, t in enumerate(trees):
                cands = new.get(id(t), [])
                for n in cands:
                    n.visits = 1 if n.value is not None else 0
                picked = draw(cands, self.beams - len(finished[i]), tau, rngs[i])
                for n in picked:
                    n.info["kept"] = True
                finished[i] += [n for n in picked if n.terminal]
                active[i] = [n for n in picked if not n.terminal]
        return [self._trace(task, t, done) for t, done in zip(trees, finished)]

    def _trace(self, task, tree: Tree, done: list[TreeNode]) -> Trace:
        chosen, answer, conf, info = choose(task, done, self.final)
        finals = {how: choose(task, done, how)[1] for how in FINALS}  # every rule, for comparison
        steps = [*tree.steps, tree_step(tree, chosen, self.final, finals=finals, **info)]
        return make_trace(tree.example, self.name, steps, initial_answer=first_answer(tree),
                          final_answer=answer,
                          confidence=conf, nodes=len(tree.nodes), value=self.value, **info)


def draw(cands: Sequence[TreeNode], k: int, tau: float, rng: random.Random) -> list[TreeNode]:
    """``k`` candidates without replacement, P ∝ value^(1/τ) (Gumbel top-k); τ = 0: the k best values.
    Candidates with value None come after every valued one; ties keep the earlier candidate."""
    if k <= 0 or not cands:
        return []
    keys = []
    for j, n in enumerate(cands):
        if n.value is None:
            keys.append((0, 0.0, -j))
        elif n.value <= 0:
            keys.append((1, -math.inf, -j))
        elif tau == 0:
            keys.append((2, n.value, -j))
        else:
            gumbel = -math.log(-math.log(max(rng.random(), 1e-300)))
            keys.append((2, math.log(n.value) / tau + gumbel, -j))
    order = sorted(range(len(cands)), key=lambda j: keys[j], reverse=True)
    return [cands[j] for j in order[:k]]
