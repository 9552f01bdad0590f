"""The ``Method`` contract: what one self-improvement training method does in a round.

A method is a frozen dataclass whose fields are its own settings and whose docstring names its paper (title
and arXiv id). The one round loop (``loop.py``) runs any method the same way::

    examples = method.round_examples(loop, r)          # which problems this round (default: a train slice)
    traces   = method.collect(loop, r, backend, examples)   # generate and verify / vote / judge, scored
    built    = method.build(loop, r, traces, examples)      # SFT rows or preference pairs (+ stats)
    train      method.objective ('sft' on built.rows, 'dpo' on built.pairs), from round r-1's model or, when
               method.restarts_from_base, from the base model; then method.after_train(loop, r, seed)
    evaluate   greedy accuracy on the dev and evaluated splits, + method.evaluate(loop, r, backend, dev)

Class-level facts every method declares: ``name`` (as ``--method`` takes it), ``paper``, ``objective``,
``reads_gold`` (whether its data selection reads gold answers), ``restarts_from_base`` and ``guarded``
(whether every evaluation also probes the judge-reliability and collapse guards of ``guards.py``, and the run
stops when dev accuracy fell two rounds in a row). A new method is one file with one subclass and one
``register_method`` line; the run settings it reads (samples ``n``, temperature, seeds, ...) come from
``loop.cfg``.

The shared building blocks of ``collect`` and ``build`` follow: sampling, gold verification, majority voting,
and the data reports every round stores in ``data.json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..records import Example, SamplingParams, Step, Trace
from ..strategies.base import generate_step, make_trace
from .data import PseudoLabel, SFTRow, label_precision, row_stats
from .preferences import PreferencePair, pair_stats

OBJECTIVES = ("sft", "dpo", "grpo")
"""What a method trains with ('grpo': TRL's GRPO on the round's prompts with the run's ``rl`` reward)."""


@dataclass
class Built:
    """What a method builds from one round's traces."""

    rows: list[SFTRow] = field(default_factory=list)
    """SFT rows (the objective 'sft' trains on them)."""
    pairs: list[PreferencePair] = field(default_factory=list)
    """Preference pairs (the objective 'dpo' trains on them; V-STaR's verifier too)."""
    labels: list[PseudoLabel] = field(default_factory=list)
    """Majority-vote pseudo-labels, where the method votes."""
    stats: dict[str, Any] = field(default_factory=dict)
    """What the round's data looks like (stored in ``round-<r>/data.json``)."""


@dataclass(frozen=True)
class Method:
    """Base class of a training method; subclasses are frozen dataclasses whose fields are their settings."""

    name: ClassVar[str] = ""
    """The method's name, as ``--method`` and recipes take it."""
    paper: ClassVar[str] = ""
    """The paper the method implements, as 'Title, arXiv:ID' (empty for controls); ``ls`` shows it."""
    objective: ClassVar[str] = "sft"
    """'sft' (trains on ``Built.rows``) or 'dpo' (trains on ``Built.pairs``)."""
    reads_gold: ClassVar[bool] = False
    """Whether the method's data selection reads gold answers (reports read them always)."""
    restarts_from_base: ClassVar[bool] = False
    """Whether every round trains the base model (else it continues from round r-1's model)."""
    guarded: ClassVar[bool] = False
    """Whether every evaluation probes the guards (judge agreement, injection, length drift, collapse) and
    stores the log-probability of the gold solutions; the run then stops on collapse
    (``guards.collapse_stop``)."""

    # ---- the round --------------------------------------------------------------------------------------
    def validate(self, cfg) -> None:
        """Refuse settings that do not go together with the run config ``cfg`` (raise ValueError)."""

    def round_examples(self, loop, r: int) -> tuple[list[Example], str]:
        """Round r's training examples and the split they come from (default: a slice of the train split)."""
        return loop.train_slice(r)

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        """Round r's generation with round r-1's model (``backend``): one scored trace per example, in
        order."""
        raise NotImplementedError

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        """The training data of round r (a pure function of the traces, the task and the settings)."""
        raise NotImplementedError

    def after_train(self, loop, r: int, seed: int) -> dict[str, Any] | None:
        """Anything trained besides the policy (V-STaR's verifier); its report goes into ``train.json``."""
        return None

    def evaluate(self, loop, r: int, backend, dev: list[Example]) -> dict[str, Any]:
        """The method's own measurements of round r's model (stored in ``extra.json`` for guarded methods)."""
        return {}

    def eval_splits(self) -> tuple[str, ...]:
        """Splits the method adds to every round's evaluation."""
        return ()

    def stop_reason(self, loop, r: int) -> str | None:
        """Why the run stops before round r (beside patience and collapse), or None."""
        return None

    def guard_judge(self) -> str:
        """The self-judge the guards probe unless ``guards.judge`` names one (the method's own, where it
        judges)."""
        return "ptrue"

    def sample_rewards(self, task, trace: Trace) -> list[float | None] | None:
        """The method's reward of each sample of a trace (the guards' exploitation measures), None if none."""
        judge = next((s for s in trace.steps if s.kind == "self-judge"), None)
        return [v.score for v in judge.verdicts] if judge else None

    # ---- settings ---------------------------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        """The method's settings as plain values."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}


# ---- building blocks of collect ----------------------------------------------------------------------------


def seed_of(cfg, r: int) -> int:
    """The seed of everything random in round r (sampling, data order, training)."""
    return cfg.seed * 1000 + r


def sample(backend, task, examples: Sequence[Example], cfg, r: int, n: int | None = None) -> list[Step]:
    """``n`` (default ``cfg.n``) samples per example at the run's temperature: one ``generate`` step each."""
    params = SamplingParams(n=cfg.n if n is None else n, temperature=cfg.temperature, top_p=cfg.top_p,
                            max_tokens=cfg.max_tokens, seed=seed_of(cfg, r))
    return generate_step(backend, task, [task.prompt(e) for e in examples], params)


def verified(task, examples: Sequence[Example], steps: Sequence[Step]) -> list[Step]:
    """The steps with the task's gold verifier's verdict on every answer."""
    verdicts = task.default_verifier().verify(list(examples), [list(s.answers) for s in steps])
    return [dataclasses.replace(s, verdicts=tuple(v)) for s, v in zip(steps, verdicts)]


def gold_traces(name: str, examples: Sequence[Example], steps: Sequence[Step],
                extra: dict[int, Step] | None = None) -> list[Trace]:
    """Traces of verified samples (STaR, ReST^EM): confidence = the share of correct samples; ``extra`` adds a
    further step to example i's trace (STaR's rationalisation)."""
    extra = extra or {}
    traces = []
    for i, (e, s) in enumerate(zip(examples, steps)):
        n_correct = sum(bool(v.correct) for v in s.verdicts)
        more = [extra[i]] if i in extra else []
        traces.append(make_trace(e, name, [s, *more], initial_answer=s.answers[0], final_answer=s.answers[0],
                                 confidence=n_correct / len(s.answers), correct_samples=n_correct,
                                 rationalised=i in extra and any(bool(v.correct) for v in extra[i].verdicts)))
    return traces


def voted_traces(name: str, task, examples: Sequence[Example], steps: Sequence[Step]) -> list[Trace]:
    """Traces whose final answer is the majority answer of the samples (a ``vote`` step records it)."""
    from ..answers import majority

    traces = []
    for e, s in zip(examples, steps):
        winner, votes, parsed = majority(s.answers, task.equivalent)
        n = len(s.answers)
        vote = Step(kind="vote", info={"winner": winner, "votes": votes, "parsed": parsed, "n": n})
        traces.append(make_trace(e, name, [s, vote], initial_answer=s.answers[0], final_answer=winner,
                                 confidence=votes / n if n else 0.0, samples=n))
    return traces


# ---- building blocks of build: the data reports ------------------------------------------------------------


def sft_report(method: Method, task, examples: Sequence[Example], traces: Sequence[Trace],
               rows: Sequence[SFTRow], labels: Sequence[PseudoLabel] = (), new_rows: int | None = None
               ) -> dict[str, Any]:
    """``data.json`` of an SFT round: row counts, coverage, rationalisations, pseudo-label precision."""
    out = row_stats(traces, rows)
    out["gold_filter"] = method.reads_gold
    n = len(traces) or 1
    if method.reads_gold:
        out["solved_by_sampling"] = sum(t.info.get("correct_samples", 0) > 0 for t in traces) / n
        out["rationalised"] = sum(bool(t.info.get("rationalised")) for t in traces)
    if labels:
        by_id = {e.id: e for e in examples}
        out["pseudo_labels"] = label_precision(labels, lambda i, a: task.check(by_id[i], a))
    out["new_rows"] = len(rows) if new_rows is None else new_rows
    out["moved_frontier"] = False
    return out


def pair_report(method: Method, loop, r: int, traces: Sequence[Trace], examples: Sequence[Example],
                stats: dict[str, Any], pairs: Sequence[PreferencePair] = (), rows: Sequence[SFTRow] = ()
                ) -> dict[str, Any]:
    """``data.json`` of a guarded round: the builder's own counts, pair statistics, how often a pair is right
    by gold (reported, never used) and the guards on the round's own samples."""
    from . import guards

    by_id = {e.id: e for e in examples}
    return {**stats, **pair_stats(pairs), "rows": len(rows) if rows else len(pairs), "sft_rows": len(rows),
            "pair_gold": guards.pair_gold(loop.task, by_id, list(pairs)),
            "train_guards": guards.train_guards(loop.task, by_id, list(traces),
                                                lambda t: method.sample_rewards(loop.task, t)),
            "judge_guards_round": r - 1}  # round-<r-1>/guards.json: the model that judged this data


__all__ = ["OBJECTIVES", "Built", "Method", "gold_traces", "pair_report", "sample", "seed_of", "sft_report",
           "verified", "voted_traces"]
