"""Easy-to-hard self-improvement — "Self-Improving Transformers Overcome Easy-to-Hard and Length
Generalization Challenges" (Lee et al. 2025, arXiv:2502.01612).

LMSI's majority-vote labelling (``lmsi.py``) applied one difficulty step beyond the current frontier: round r
pseudo-labels a training pool at the difficulty ``difficulty_splits[frontier]`` (the task's ``pool_split``,
disjoint from every evaluated split), keeps the agreeing completions that pass the length filter (not
truncated; plausible length where the task can judge it), adds ``replay`` earlier rows per new row (seeded
with gold in-range solutions), and the frontier moves one step after every round that kept rows. The run stops
when it runs out of difficulty splits; every difficulty split is evaluated every round.

Not covered: the paper's curriculum of many small steps and its weight averaging.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ...records import Completion, Example, Trace
from ..data import SFTRow, majority_rows
from ..method import Built, seed_of, sft_report
from .lmsi import Lmsi


@dataclass(frozen=True)
class EasyToHard(Lmsi):
    """LMSI one difficulty step beyond the frontier, with length filter and replay."""

    name = "easy-to-hard"
    paper = ("Self-Improving Transformers Overcome Easy-to-Hard and Length Generalization Challenges, "
             "arXiv:2502.01612")

    difficulty_splits: tuple[str, ...] = ()
    """Split names in increasing difficulty, the first one step beyond the pretraining range."""
    replay: float = 1.0
    """Replayed earlier rows per new row (0 disables replay)."""
    replay_gold: bool = True
    """The replay pool starts with gold in-range solutions (``task.solution``) where the task has them — in
    range only, so no gold beyond the pretraining range is used."""
    length_filter: bool = True
    """Drop truncated completions and, where the task can judge it, implausible lengths."""

    def __post_init__(self) -> None:
        splits = self.difficulty_splits
        object.__setattr__(self, "difficulty_splits", (splits,) if isinstance(splits, str) else tuple(splits))

    def validate(self, cfg) -> None:
        super().validate(cfg)
        if not self.difficulty_splits:
            raise ValueError(f"{self.name}: difficulty_splits needs at least one split name beyond the "
                             f"pretraining range (e.g. terms=6)")
        if self.replay < 0:
            raise ValueError(f"{self.name}: replay must be >= 0, got {self.replay}")

    def eval_splits(self) -> tuple[str, ...]:
        return self.difficulty_splits

    def round_examples(self, loop, r: int) -> tuple[list[Example], str]:
        split = self.pool_split(loop, self.difficulty_splits[self.frontier(loop, r)])
        return loop.examples(split, loop.cfg.train_limit), split

    def frontier(self, loop, r: int) -> int:
        """Index into difficulty_splits of round r's target (moves after rounds that kept rows)."""
        return sum(bool(loop.rd.read_json(f"round-{j}/data.json").get("moved_frontier")) for j in range(1, r))

    def pool_split(self, loop, split: str) -> str:
        """The task's training pool at that difficulty (``task.pool_split``), disjoint from every evaluated
        split; otherwise the evaluated split itself, which the log and ``data.json`` say (the round's accuracy
        on that split is then measured on problems it trained on, without their gold labels)."""
        name = loop.task.pool_split(split)
        if name is not None:
            if not loop.task.examples(name):
                raise ValueError(f"easy-to-hard: the training pool {name!r} of split {split!r} is empty")
            return name
        loop.log(f"easy-to-hard: the task has no training pool for '{split}'; pseudo-labelling the evaluated "
                 f"split itself")
        return split

    def stop_reason(self, loop, r: int) -> str | None:
        if self.frontier(loop, r) >= len(self.difficulty_splits):
            return "easy-to-hard ran out of difficulty splits"
        return None

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        rows, labels = majority_rows(traces, loop.task.equivalent, threshold=self.threshold,
                                     keep=self.keep(loop.task, examples), suffix=loop.cfg.target_suffix,
                                     max_per_example=self.max_per_example, round_idx=r)
        new = len(rows)
        rows = rows + self.replayed(loop, r, new)
        stats = sft_report(self, loop.task, examples, traces, rows, labels, new_rows=new)
        split = loop.rd.read_json(f"round-{r}/generate.json")["split"]
        stats.update(moved_frontier=new > 0, pool_disjoint=split not in loop.eval_split_names())
        return Built(rows=rows, labels=labels, stats=stats)

    def keep(self, task, examples: list[Example]):
        """Lee et al.'s length filter, generically: drop truncated completions, and where the task can say how
        long a plausible answer is (``task.plausible(example, answer)``), drop implausible ones."""
        if not self.length_filter:
            return None
        by_id = {e.id: e for e in examples}

        def keep(example_id: str, completion: Completion, label: str) -> bool:
            if completion.finish_reason != "stop":
                return False
            return bool(task.plausible(by_id[example_id], label))

        return keep

    def replayed(self, loop, r: int, new: int) -> list[SFTRow]:
        """``ceil(replay x new)`` rows drawn from gold in-range solutions and earlier rounds' pseudo-labelled
        rows."""
        task, cfg, pool = loop.task, loop.cfg, []
        if self.replay_gold:
            for e in loop.examples(cfg.train_split, cfg.train_limit):
                if (gold := task.solution(e)) is not None:
                    pool.append(SFTRow(task.prompt(e), gold + cfg.target_suffix, e.id, "replay-gold",
                                       e.answer, 0))
        for j in range(1, r):
            pool += [SFTRow.from_dict(d) for d in loop.rd.read_jsonl(f"round-{j}/rows.jsonl")
                     if d["source"] == "pseudo"]
        want = min(len(pool), math.ceil(self.replay * new))
        picked = random.Random(seed_of(cfg, r)).sample(pool, want) if new else []
        return [SFTRow(x.prompt, x.completion, x.example_id, "replay" if x.source == "pseudo" else x.source,
                       x.answer, x.round_idx) for x in picked]
