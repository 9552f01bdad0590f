"""MCTS-DPO — "Monte Carlo Tree Search Boosts Reasoning via Iterative Preference Learning" (Xie et al. 2024,
arXiv:2405.00451).

Each round: an MCTS (``strategies/mcts.py``: UCT selection, expansion of ``children`` steps, simulation, back-
propagation) over every training example with round r-1's model, the value of a new node being the share of
``rollouts`` completions from it that reach the gold answer (the paper's outcome reward; GOLD-READING); then
step-level preference pairs from the tree (``search_data.sibling_pairs``): for every expanded node, its child
with the highest mean value Q against its child with the lowest, when they differ by at least ``min_gap``; the
prompt is the task prompt plus the partial solution so far, chosen and rejected one step each (no EOS after a
step inside a solution). DPO continues from round r-1's model (the paper's iterative, on-policy rounds).

Not covered: the paper's self-evaluation term in the node value (the tiny model's verify format cannot judge a
partial solution), its dynamic exploration constant and its curriculum over rounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...records import Example, Trace
from ...strategies.base import score_traces
from ..method import Built, Method, pair_report, seed_of
from ..preferences import Provenance
from ..search_data import sibling_pairs


@dataclass(frozen=True)
class MCTSDPO(Method):
    """Iterative DPO on sibling steps of an MCTS tree with different back-propagated values (gold outcome)."""

    name = "mcts-dpo"
    paper = "Monte Carlo Tree Search Boosts Reasoning via Iterative Preference Learning, arXiv:2405.00451"
    objective = "dpo"
    reads_gold = True
    guarded = True

    iterations: int = 6
    """MCTS iterations per training example."""
    children: int = 3
    """Children sampled per expansion (MCTS's k)."""
    rollouts: int = 2
    """Rollouts per new node (its value: the share that reach the gold answer)."""
    c: float = 1.0
    """UCT exploration constant."""
    min_gap: float = 0.3
    """Smallest Q difference between chosen and rejected siblings."""
    max_pairs_per_example: int | None = 4
    """Cap on pairs per example (the widest Q gaps first; None: no cap)."""

    def validate(self, cfg) -> None:
        if self.iterations < 1 or self.children < 2 or self.rollouts < 1:
            raise ValueError(
                f"{self.name}: iterations and rollouts must be >= 1 and children >= 2 (siblings to pair), "
                f"got {self.iterations}, {self.rollouts}, {self.k}"
            )
        if not 0 <= self.min_gap <= 1:
            raise ValueError(f"{self.name}: min_gap must be in [0, 1], got {self.min_gap}")

    def search(self, loop, r: int):
        from ...strategies.mcts import MCTS

        cfg = loop.cfg
        return MCTS(
            value="rollout",
            rollouts=self.rollouts,
            iterations=self.iterations,
            k=self.children,
            c=self.c,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            seed=seed_of(cfg, r),
        )

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        from ...verifiers.step_values import Rollout

        mcts, cfg = self.search(loop, r), loop.cfg
        gold = Rollout(
            backend,
            loop.task,
            m=self.rollouts,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            gold=True,
        )
        return score_traces(loop.task, examples, mcts.run(backend, loop.task, examples, step_value=gold))

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        prov = Provenance(r, model=str(loop.path(r - 1)), seed=seed_of(loop.cfg, r))
        prompts = {e.id: loop.task.prompt(e) for e in examples}
        pairs, stats = sibling_pairs(
            traces,
            prompts,
            min_gap=self.min_gap,
            max_pairs=self.max_pairs_per_example,
            prov=prov,
            method=self.name,
        )
        stats["generated_tokens"] = generated_tokens(traces)
        return Built(pairs=pairs, stats=pair_report(self, loop, r, traces, examples, stats, pairs))

    def sample_rewards(self, task, trace: Trace) -> None:
        return None


def generated_tokens(traces: list[Trace]) -> int:
    """Every completion token the round's generation spent (expansions, rollouts, samples)."""
    return sum(c.completion_tokens for t in traces for s in t.steps for c in s.completions)
