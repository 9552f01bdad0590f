"""Correction metrics: what a second look fixed versus what it broke.

Implements the decomposition of *Confidence v.s. Critique: A Decomposition of Self-Correction Capability
for LLMs* (arXiv:2412.19513), with the before/after transition counts of SCoRe (*Training Language Models to
Self-Correct via Reinforcement Learning*, arXiv:2409.12917).

Input: one row per sample, ``(question id, initial_correct, final_correct)``; several rows with the same id
are several samples of that question. Output, one plain dict:

- ``acc1`` = (1/N) Σᵢ P(aᵢ)  and  ``acc2`` = (1/N) Σᵢ P(bᵢ), over the N questions with a decided sample, where
  aᵢ = "initial answer correct", bᵢ = "final answer correct", and P(·) is the fraction of question i's decided
  samples. ``delta`` = acc2 − acc1.
- ``cl`` (Confidence Level, P(b | a)) and ``cs`` (Critique Score, P(b | ¬a)), as the paper defines them::

      CL = Σᵢ P(aᵢ)·P(bᵢ|aᵢ) / Σᵢ P(aᵢ)              = Σᵢ p_cc,i / Σᵢ (p_cc,i + p_cw,i)
      CS = Σᵢ (1−P(aᵢ))·P(bᵢ|¬aᵢ) / Σᵢ (1−P(aᵢ))     = Σᵢ p_wc,i / Σᵢ (p_wc,i + p_ww,i)

  with p_xy,i = n_xy,i / nᵢ the share of question i's samples that went x→y.
- ``rss`` = (acc2 − acc1²) / (2·acc1·(1 − acc1)), the Relative Self-correction Score as the paper's released
  code computes it; None when acc1 is 0 or 1. Reference points: keeping every answer (CL = 1,
  CS = 0) and redrawing independently at the same accuracy (CL = CS = acc1) both give 0.5.
- ``transitions`` (counts cc/cw/wc/ww over all decided samples) and ``transition_rates`` (the per-question
  means of p_xy,i, so acc1 = cc + cw, acc2 = cc + wc and delta = wc − cw hold exactly).
- ``changed_answer_rate`` when answers are given.

Choices where the paper is ambiguous (documented because they change numbers):

1. *Per-question weighting.* Each question weighs 1/N whatever its sample count, as the per-question
   probabilities in the paper imply. With one sample per question, or the same count for every question, this
   is identical to the pooled-count recipe of the paper (CL = n_cc/(n_cc+n_cw), ...).
2. *P(bᵢ|aᵢ) when P(aᵢ) = 0.* It is undefined, but it only ever appears multiplied by P(aᵢ), so the product
   is taken as p_cc,i = 0 directly; no question is dropped for it.
3. *Undecided samples* (initial or final correctness None) are removed before any probability is estimated,
   counted in ``undecided``; a question whose samples are all undecided is counted in ``questions_undecided``
   and is not one of the N.
4. *Changed answers.* A pair with either answer None (unparseable) is counted in ``answer_pairs_missing`` and
   left out of ``changed_answer_rate``'s denominator; the rate is pooled over samples (not per question).
   Answers are compared as given: normalise them first (``selfimprove.answers``).

Not covered: the paper's CCT training recipe, the edit-distance collapse measure of SCoRe, multi-round
trajectories (pass round k and round k+1 as initial/final to study one step at a time), and confidence
intervals (see ``metrics.stats`` for paired tests between two strategies).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

TRANSITIONS = ("cc", "cw", "wc", "ww")
"""Transition names: initial correct/wrong → final correct/wrong (c→c 'confident', c→w 'unconfident',
w→c 'critical', w→w 'stubborn' in the paper's words)."""


def correction(ids: Sequence[Hashable], initial_correct: Sequence[bool | None],
               final_correct: Sequence[bool | None], *,
               initial_answers: Sequence[str | None] | None = None,
               final_answers: Sequence[str | None] | None = None) -> dict[str, Any]:
    """Acc₁, Acc₂, Δ, transitions, CL, CS, RSS and the changed-answer rate from per-sample rows.

    The sequences are parallel, one entry per sample; ``ids`` groups samples into questions. ``None``
    correctness is undecided (counted, excluded). Answers are optional and must be given together.
    Raises ValueError when lengths differ.
    """
    n_rows = len(ids)
    for name, seq in (("initial_correct", initial_correct), ("final_correct", final_correct),
                      ("initial_answers", initial_answers), ("final_answers", final_answers)):
        if seq is not None and len(seq) != n_rows:
            raise ValueError(f"{name} has {len(seq)} entries but ids has {n_rows}; pass one per sample")
    if (initial_answers is None) != (final_answers is None):
        raise ValueError("pass initial_answers and final_answers together, or neither")

    # question id -> [n_cc, n_cw, n_wc, n_ww] over its decided samples; all_ids keeps first-seen order
    counts: dict[Hashable, list[int]] = {}
    all_ids: dict[Hashable, None] = {}
    undecided = 0
    for qid, a, b in zip(ids, initial_correct, final_correct):
        all_ids[qid] = None
        if a is None or b is None:
            undecided += 1
            continue
        row = counts.setdefault(qid, [0, 0, 0, 0])
        row[TRANSITIONS.index(("c" if a else "w") + ("c" if b else "w"))] += 1

    totals = [sum(row[k] for row in counts.values()) for k in range(4)]
    n_q = len(counts)
    rates = [_question_mean(counts, (k,)) for k in range(4)]  # mean over questions of p_xy,i (choice 1)
    acc1 = _question_mean(counts, (0, 1))
    acc2 = _question_mean(counts, (0, 2))
    wrong1 = _question_mean(counts, (2, 3))  # 1 − acc1, computed from counts so it is exactly 0 when it is 0
    # RSS is undefined at acc1 ∈ {0, 1}; decide that from counts, not by comparing floats
    defined = totals[0] + totals[1] > 0 and totals[2] + totals[3] > 0
    result: dict[str, Any] = {
        "n": sum(totals),
        "n_questions": n_q,
        "undecided": undecided,
        "questions_undecided": len(all_ids) - n_q,
        "acc1": acc1,
        "acc2": acc2,
        "delta": None if acc1 is None else acc2 - acc1,
        "cl": _ratio(rates[0], acc1) if totals[0] + totals[1] else None,
        "cs": _ratio(rates[2], wrong1) if totals[2] + totals[3] else None,
        "rss": relative_self_correction_score(acc1, acc2) if defined else None,
        "transitions": dict(zip(TRANSITIONS, totals)),
        "transition_rates": dict(zip(TRANSITIONS, rates)),
        "samples_per_question": _spread([sum(row) for row in counts.values()]),
    }
    if initial_answers is not None:
        result.update(_changed_answers(initial_correct, final_correct, initial_answers, final_answers))
    return result


def correction_from_traces(traces: Iterable[Any], *, unparsed_as_wrong: bool = False) -> dict[str, Any]:
    """``correction`` over traces of one strategy, from ``Trace.initial_correct`` and ``Trace.correct``.

    Traces sharing an ``example_id`` are samples of one question. ``initial_answer`` / ``final_answer`` feed
    the changed-answer rate. Raises ValueError when the traces come from more than one strategy: mixing
    strategies in one decomposition would measure neither.

    ``unparsed_as_wrong=True`` counts an unparseable answer (``None``) as wrong, as accuracy and the paired
    tests of ``selfimprove eval`` do, so a review that turns right answers into unreadable text shows as c→w
    instead of vanishing into ``undecided`` (a parseable answer without a gold verdict stays undecided).
    Either way ``unparsed_initial`` / ``unparsed_final`` count the unparseable answers.
    """
    traces = list(traces)
    strategies = sorted({t.strategy for t in traces})
    if len(strategies) > 1:
        raise ValueError(f"traces mix strategies {strategies}; call once per strategy")

    def verdict(answer, correct):
        return False if unparsed_as_wrong and answer is None else correct

    result = correction([t.example_id for t in traces],
                        [verdict(t.initial_answer, t.initial_correct) for t in traces],
                        [verdict(t.final_answer, t.correct) for t in traces],
                        initial_answers=[t.initial_answer for t in traces],
                        final_answers=[t.final_answer for t in traces])
    result["strategy"] = strategies[0] if strategies else None
    result["unparsed_initial"] = sum(t.initial_answer is None for t in traces)
    result["unparsed_final"] = sum(t.final_answer is None for t in traces)
    result["unparsed_as_wrong"] = unparsed_as_wrong
    return result


def relative_self_correction_score(acc1: float | None, acc2: float | None) -> float | None:
    """RSS = (Acc₂ − Acc₁²) / (2·Acc₁·(1 − Acc₁)); None when Acc₁ is None, 0 or 1 (undefined)."""
    if acc1 is None or acc2 is None or acc1 <= 0.0 or acc1 >= 1.0:
        return None
    return (acc2 - acc1 * acc1) / (2.0 * acc1 * (1.0 - acc1))


def _changed_answers(initial_correct, final_correct, initial_answers, final_answers) -> dict[str, Any]:
    """Changed-answer counts over samples with decided correctness and both answers parsed (choice 4)."""
    changed = compared = missing = 0
    for a, b, x, y in zip(initial_correct, final_correct, initial_answers, final_answers):
        if a is None or b is None:
            continue  # already counted as undecided
        if x is None or y is None:
            missing += 1
            continue
        compared += 1
        changed += x != y
    return {"changed_answers": changed, "answer_pairs": compared, "answer_pairs_missing": missing,
            "changed_answer_rate": changed / compared if compared else None}


def _question_mean(counts: dict[Hashable, list[int]], cells: tuple[int, ...]) -> float | None:
    """(1/N) Σᵢ (Σ_cells n_cell,i) / nᵢ: the per-question share of the given transitions, averaged."""
    if not counts:
        return None
    return math.fsum(sum(row[k] for k in cells) / sum(row) for row in counts.values()) / len(counts)


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den <= 0.0 else num / den


def _spread(values: list[int]) -> dict[str, float | int | None]:
    if not values:
        return {"min": None, "max": None, "mean": None}
    return {"min": min(values), "max": max(values), "mean": sum(values) / len(values)}
