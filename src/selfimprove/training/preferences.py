"""Preference-pair builders: pure functions from generation traces to (prompt, chosen, rejected) pairs.

One builder per pairing rule of the preference methods (``training/methods/``):

- ``self_rewarding_pairs`` — "Self-Rewarding Language Models" (Yuan et al. 2024, arXiv:2401.10020): the
  policy judges its own k samples (additive 5-point rubric, P(True) in the task's verify format, ...);
  chosen = the highest-scored sample, rejected = the lowest, ties (and pools with fewer than two scored
  samples) dropped. The judge is the current model, so iterating M1 → M2 → M3 improves judge and actor
  together.
- ``meta_judge_pairs`` — "Meta-Rewarding Language Models" (Wu et al. 2024, arXiv:2407.19594): the model
  compares two of its *judgements* of the same response (as a meta-judge, both orders); the preferred
  judgement is chosen. Pairs train the judge.
- ``scpo_pairs`` — "Self-Consistency Preference Optimization" (Prasad et al. 2024, arXiv:2411.04109): no gold;
  chosen = a sample of the most-voted answer, rejected = a sample of the least-voted answer, weight = the vote
  margin (votes(chosen) − votes(rejected)) / k, used by the weighted DPO loss (``dpo.WeightedDPOTrainer``).
- ``spin_pairs`` — "Self-Play Fine-Tuning Converts Weak Language Models to Strong Language Models" (Chen et
  al. 2024, arXiv:2401.01335): chosen = the gold/reference response, rejected = the current model's own
  generation for the same prompt (the reference model of the DPO step is the previous iterate, which is what
  the loop passes).
- ``correctness_pairs`` — "V-STaR: Training Verifiers for Self-Taught Reasoners" (Hosseini et al. 2024,
  arXiv:2402.06457): correct vs incorrect solutions (by the gold verifier) from the STaR rounds, to train a
  verifier with DPO; with ``max_pairs_per_example=1`` it is the gold-labelled DPO control of the comparison.
- ``cct_rows`` — Confidence and Critique Improvement Tuning ("Confidence v.s. Critique: A Decomposition of
  Self-Correction Capability for LLMs", arXiv:2412.19513): SFT data turned into correction examples — a
  correct answer under review is kept as it is (confidence, CL), a wrong one is replaced by the right answer
  (critique, CS), each written in the task's correct format (the built-in task's review answers
  `` #<answer>``; the generic review prompt a whole solution). SFT rows, not pairs.

Every pair carries its provenance (round, model, judge, seed) and every builder returns counts of what it
skipped and why: a pool the judge could not score, a tie, a unanimous vote is data, never silently dropped.
Completions that failed or were cut at ``max_tokens`` are never a *chosen* target; they may be a rejected one
only where the method's rejected response is "whatever the model said" (SPIN).

Not covered: CREAM's cross-iteration consistency weights ("CREAM: Consistency Regularized Self-Rewarding
Language Models", arXiv:2410.12735), SCIR's multi-reward consistency filter ("Self-Consistency of the Internal
Reward Models Improves Self-Rewarding Language Models"), step-level pairs ("Step-DPO: Step-wise Preference
Optimization for Long-chain Reasoning of LLMs", arXiv:2406.18629), the Self-Rewarding paper's instruction-
following EFT seed data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..answers import group_answers
from ..records import Completion, Example, Record, Trace
from .data import SFTRow, target_text, trainable

SELF_JUDGE = "self-judge"
"""Step kind holding the self-judge's verdicts, one per completion of the trace's ``generate`` step."""
META_JUDGE = "meta-judge"
"""Step kind of one meta-judgement: ``info`` = {prompt, judgements: [a, b], preferred: 0 | 1 | None}."""


@dataclass(frozen=True)
class Provenance(Record):
    """Where a round's pairs came from."""

    round_idx: int = 0
    """The round whose generation produced the pairs."""
    model: str = ""
    """The model (path or name) that generated — and, for self-judging methods, judged — the samples."""
    seed: int | None = None
    """The sampling seed of that generation."""


@dataclass(frozen=True)
class PreferencePair(Record):
    """One DPO training pair and where it came from."""

    prompt: str
    """The prompt as the model sees it at inference."""
    chosen: str
    """The preferred completion (TRL appends EOS)."""
    rejected: str
    """The dispreferred completion."""
    example_id: str
    """The example the pair answers."""
    weight: float = 1.0
    """Per-pair loss weight (ScPO's vote margin; 1 for the unweighted methods)."""
    method: str = ""
    """The builder's method name: self-rewarding, meta-judge, scpo, spin, v-star, gold-dpo."""
    judge: str = ""
    """What decided the preference: 'self:<verifier>', 'majority-vote', 'reference', 'gold'."""
    round_idx: int = 0
    """Provenance: the round."""
    model: str = ""
    """Provenance: the generating (and self-judging) model."""
    seed: int | None = None
    """Provenance: the sampling seed."""
    chosen_score: float | None = None
    """The judge's score or the vote count of the chosen response, where there is one."""
    rejected_score: float | None = None
    """The same for the rejected response."""
    chosen_answer: str | None = None
    """The extracted answer of the chosen response."""
    rejected_answer: str | None = None
    """The extracted answer of the rejected response (None: unparseable)."""
    partial: bool = False
    """Chosen and rejected are single steps inside a solution (step-level pairs): trained without the EOS that
    ends a whole response."""

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if not self.partial:  # whole-response pairs keep the layout they had before step-level pairs existed
            d.pop("partial", None)
        return d

    def trl(self) -> dict[str, Any]:
        out = {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected, "weight": self.weight}
        if self.partial:
            out["partial"] = True
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreferencePair:
        return cls(**d)


def self_rewarding_pairs(traces: Sequence[Trace], *, judge: str, prov: Provenance = Provenance(),
                         suffix: str = "",
                         min_gap: float = 0.0) -> tuple[list[PreferencePair], dict[str, Any]]:
    """Self-Rewarding: highest- vs lowest-scored trainable sample of each pool, by the ``self-judge`` step.

    A pool needs two scored trainable samples whose scores differ by more than ``min_gap`` (0: any
    difference; equal scores are a tie and give no pair). Unscored samples (the judge's output could not be
    read) are counted in ``unscored``."""
    pairs, skipped, unscored = [], Counter(), 0
    for t in traces:
        gen, scores = t.first("generate"), _judge_scores(t)
        unscored += sum(s is None for s in scores)
        cands = [(i, c, a, scores[i]) for i, (c, a) in enumerate(zip(gen.completions, gen.answers))
                 if trainable(c) and scores[i] is not None]
        if len(cands) < 2:
            skipped["too_few_scored"] += 1
            continue
        hi = max(cands, key=lambda x: x[3])  # max/min keep the first of equal scores
        lo = min(cands, key=lambda x: x[3])
        if hi[3] - lo[3] <= min_gap:
            skipped["tie"] += 1
            continue
        if hi[1].text == lo[1].text:
            skipped["same_text"] += 1
            continue
        pairs.append(_pair(gen.prompt, hi, lo, t.example_id, 1.0, "self-rewarding", f"self:{judge}", prov,
                           suffix))
    return pairs, _stats(traces, pairs, skipped, unscored=unscored)


def meta_judge_pairs(traces: Sequence[Trace], *, prov: Provenance = Provenance(), suffix: str = ""
                     ) -> tuple[list[PreferencePair], dict[str, Any]]:
    """Meta-Rewarding: one pair per ``meta-judge`` step whose meta-judge preferred one of two judgements
    (consistently in both orders); undecided or identical judgements are counted, not paired."""
    pairs, skipped, steps = [], Counter(), 0
    for t in traces:
        for s in t.steps:
            if s.kind != META_JUDGE:
                continue
            steps += 1
            a, b = s.info["judgements"]
            pref = s.info.get("preferred")
            if pref is None:
                skipped["undecided"] += 1
            elif a == b:
                skipped["same_text"] += 1
            else:
                chosen, rejected = (a, b) if pref == 0 else (b, a)
                pairs.append(PreferencePair(s.info["prompt"], chosen + suffix, rejected + suffix,
                                            t.example_id,
                                            method="meta-judge", judge="self:meta-judge", **_prov(prov)))
    return pairs, _stats(traces, pairs, skipped, meta_judgements=steps)


def scpo_pairs(traces: Sequence[Trace], equivalent: Callable[[str | None, str | None], bool] | None = None, *,
               prov: Provenance = Provenance(), threshold: float = 0.0, suffix: str = "",
               include_unparseable: bool = False) -> tuple[list[PreferencePair], dict[str, Any]]:
    """ScPO: most-voted vs least-voted answer's sample, weight = vote margin / k (k = every sample).

    Answers are grouped with ``equivalent``. No pair when no sample parsed, when every parsed sample agrees,
    when two answers tie for the most votes, or when the top vote share is below ``threshold``. With
    ``include_unparseable`` an unparseable sample is a candidate rejected response with 0 votes."""
    eq = equivalent or str.__eq__
    pairs, skipped = [], Counter()
    for t in traces:
        gen = t.first("generate")
        k = len(gen.completions)
        groups = group_answers(gen.answers, eq)  # sample indices per distinct answer, in order of appearance
        if not groups:
            skipped["no_parsed"] += 1
            continue
        top = max(len(g) for g in groups)
        if sum(len(g) == top for g in groups) > 1:
            skipped["tied_majority"] += 1
            continue
        if top / k < threshold:
            skipped["below_threshold"] += 1
            continue
        best = next(g for g in groups if len(g) == top)
        others = [g for g in groups if g is not best]
        unparsed = [i for i, a in enumerate(gen.answers) if a is None and gen.completions[i].ok
                    and gen.completions[i].text]
        if include_unparseable and unparsed:
            worst = unparsed
        elif others:
            fewest = min(len(g) for g in others)
            worst = next(g for g in others if len(g) == fewest)
        else:
            skipped["unanimous"] += 1
            continue
        worst_votes = 0 if worst is unparsed else len(worst)
        c = next((i for i in best if trainable(gen.completions[i])), None)
        r = next((i for i in worst if gen.completions[i].ok and gen.completions[i].text), None)
        if c is None or r is None:
            skipped["untrainable"] += 1
            continue
        weight = (top - worst_votes) / k
        pairs.append(_pair(gen.prompt, (c, gen.completions[c], gen.answers[c], float(top)),
                           (r, gen.completions[r], gen.answers[r], float(worst_votes)), t.example_id, weight,
                           "scpo", "majority-vote", prov, suffix))
    return pairs, _stats(traces, pairs, skipped)


def spin_pairs(traces: Sequence[Trace], references: Mapping[str, str], *, prov: Provenance = Provenance(),
               suffix: str = "") -> tuple[list[PreferencePair], dict[str, Any]]:
    """SPIN: chosen = ``references[example_id]`` (the SFT target), rejected = the model's first completion.

    The rejected response is what the model said, right or wrong, truncated or not (only failed requests and
    empty texts are skipped). A generation identical to the reference gives no pair (SPIN's fixed point)."""
    pairs, skipped = [], Counter()
    for t in traces:
        gen = t.first("generate")
        ref = references.get(t.example_id)
        own = next(((i, c, a) for i, (c, a) in enumerate(zip(gen.completions, gen.answers))
                    if c.ok and c.text),
                   None)
        if ref is None:
            skipped["no_reference"] += 1
        elif own is None:
            skipped["no_generation"] += 1
        elif own[1].text == ref:
            skipped["identical"] += 1
        else:
            pairs.append(PreferencePair(gen.prompt, ref + suffix, target_text(own[1], suffix), t.example_id,
                                        method="spin", judge="reference", rejected_answer=own[2],
                                        **_prov(prov)))
    return pairs, _stats(traces, pairs, skipped)


def correctness_pairs(traces: Sequence[Trace], *, prov: Provenance = Provenance(), method: str = "v-star",
                      max_pairs_per_example: int | None = None, suffix: str = "",
                      unparseable_is_wrong: bool = True) -> tuple[list[PreferencePair], dict[str, Any]]:
    """V-STaR verifier data / gold-labelled DPO: (correct, incorrect) sample pairs of each example.

    Correct = trainable with a ``correct=True`` verdict; incorrect = a ``correct=False`` verdict, or (with
    ``unparseable_is_wrong``) an unparseable answer. Texts are deduplicated; pairs are ordered along the
    diagonals of the correct × incorrect grid ((c0,w0), (c1,w0), (c0,w1), (c1,w1), ...) so a cap keeps
    every distinct sample in play. Only ``generate`` steps count (hinted rationalisations are not samples
    of the plain prompt)."""
    pairs, skipped = [], Counter()
    for t in traces:
        right, wrong, seen, prompt = [], [], set(), None
        for s in t.steps:
            if s.kind != "generate":
                continue
            prompt = s.prompt
            for i, (c, a, v) in enumerate(zip(s.completions, s.answers, s.verdicts)):
                if c.text in seen or not c.ok or not c.text:
                    continue
                if v.correct is True and trainable(c):
                    right.append((i, c, a, 1.0))
                elif v.correct is False or (a is None and unparseable_is_wrong):
                    wrong.append((i, c, a, 0.0))
                else:
                    continue
                seen.add(c.text)
        if not right or not wrong:
            skipped["no_correct" if not right else "no_incorrect"] += 1
            continue
        grid = sorted(((ci, wi) for ci in range(len(right)) for wi in range(len(wrong))),
                      key=lambda p: (max(p), p[1], p[0]))
        for ci, wi in grid[:max_pairs_per_example]:
            pairs.append(_pair(prompt, right[ci], wrong[wi], t.example_id, 1.0, method, "gold", prov, suffix))
    return pairs, _stats(traces, pairs, skipped)


def cct_rows(traces: Sequence[Trace], references: Mapping[str, str],
             correct_prompt: Callable[[str, str], str],
             *, round_idx: int = 0, suffix: str = "", max_per_kind: int | None = 2, solve_rows: bool = True,
             review_targets: Mapping[str, str] | None = None) -> tuple[list[SFTRow], dict[str, Any]]:
    """CCT: SFT rows that teach the correction step both halves of its job.

    ``correct_prompt(example_id, candidate_text)`` is the task's review prompt. For each example:
    a *confidence* row per correct sample (review prompt of that sample → what a right review writes), a
    *critique* row per wrong or unparseable sample (review prompt of it → what a right review writes), at most
    ``max_per_kind`` of each, and with ``solve_rows`` the plain SFT row (prompt → reference) the examples came
    from. What a right review writes is ``review_targets[example_id]`` where given — the task's own correct
    format, e.g. the built-in task's reviewed answer `` #<answer>`` — and otherwise what the generic review
    prompt asks for: the sample itself (confidence) or ``references[example_id]`` (critique). Samples whose
    correctness is undecidable (no gold) are skipped."""
    rows: list[SFTRow] = []
    kinds: Counter = Counter()
    skipped: Counter = Counter()
    for t in traces:
        gen, ref = t.first("generate"), references.get(t.example_id)
        if ref is None:
            skipped["no_reference"] += 1
            continue
        confident, critical, seen = [], [], set()
        for c, a, v in zip(gen.completions, gen.answers, gen.verdicts):
            if not c.ok or not c.text:
                continue
            review = correct_prompt(t.example_id, c.text)
            if review in seen:  # a review prompt may show only the answer: two chains, one row
                continue
            seen.add(review)
            fixed = review_targets.get(t.example_id) if review_targets is not None else None
            if v.correct is True and trainable(c):
                target = target_text(c, suffix) if fixed is None else fixed + suffix
                confident.append(SFTRow(review, target, t.example_id,
                                        "cct-confidence", a, round_idx))
            elif v.correct is False or a is None:
                target = ref + suffix if fixed is None else fixed + suffix
                critical.append(SFTRow(review, target, t.example_id,
                                       "cct-critique", a, round_idx))
        picked = confident[:max_per_kind] + critical[:max_per_kind]
        if solve_rows:
            picked.insert(0, SFTRow(gen.prompt, ref + suffix, t.example_id, "cct-solve", None, round_idx))
        kinds.update(r.source for r in picked)
        rows.extend(picked)
    stats = {"examples": len(traces), "rows": len(rows), "rows_by_source": dict(kinds),
             "skipped": dict(skipped)}
    return rows, stats


def pair_stats(pairs: Sequence[PreferencePair]) -> dict[str, Any]:
    """Mean weight and mean chosen/rejected lengths (characters) of a pair set."""
    n = len(pairs)
    return {"pairs": n,
            "mean_weight": sum(p.weight for p in pairs) / n if n else None,
            "mean_chosen_chars": sum(len(p.chosen) for p in pairs) / n if n else None,
            "mean_rejected_chars": sum(len(p.rejected) for p in pairs) / n if n else None}


def references(task, examples: list[Example]) -> dict[str, str]:
    """Gold/reference responses by example id: ``task.solution(e)`` where the task has one, else
    ``e.meta['solution']`` where present."""
    out = {}
    for e in examples:
        ref = task.solution(e)
        if ref:
            out[e.id] = ref
    return out


# ---- internals --------------------------------------------------------------------------------------------


def _judge_scores(trace: Trace) -> list[float | None]:
    gen = trace.first("generate")
    for s in trace.steps:
        if s.kind == SELF_JUDGE:
            if len(s.verdicts) != len(gen.completions):
                raise ValueError(f"trace {trace.example_id}: the self-judge step has {len(s.verdicts)} "
                                 f"verdicts for {len(gen.completions)} samples; it needs one per sample")
            return [v.score for v in s.verdicts]
    return [None] * len(gen.completions)


def _prov(prov: Provenance) -> dict[str, Any]:
    return {"round_idx": prov.round_idx, "model": prov.model, "seed": prov.seed}


def _pair(prompt: str, chosen: tuple[int, Completion, str | None, float],
          rejected: tuple[int, Completion, str | None, float], example_id: str, weight: float, method: str,
          judge: str, prov: Provenance, suffix: str) -> PreferencePair:
    return PreferencePair(prompt, target_text(chosen[1], suffix), target_text(rejected[1], suffix),
                          example_id,
                          weight=weight, method=method, judge=judge, chosen_score=chosen[3],
                          rejected_score=rejected[3], chosen_answer=chosen[2], rejected_answer=rejected[2],
                          **_prov(prov))


def _stats(traces: Sequence[Trace], pairs: Sequence[PreferencePair], skipped: Counter, **extra: Any
           ) -> dict[str, Any]:
    return {"examples": len(traces), "pairs": len(pairs),
            "examples_with_pairs": len({p.example_id for p in pairs}),
            "skipped": dict(skipped), **extra}
