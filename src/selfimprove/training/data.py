"""Data builders: pure functions from generation traces to SFT rows.

One builder per selection rule of the self-training methods:

- ``correct_rows`` — "STaR: Bootstrapping Reasoning With Reasoning" (arXiv:2203.14465) and ReST^EM ("Beyond
  Human Data: Scaling Self-Training for Problem-Solving with Language Models", arXiv:2312.06585):
  keep the sampled completions a verifier marked ``correct=True``; STaR's *rationalisation* completions (made
  with the gold answer as a hint) are kept the same way but are trained on the prompt *without* the hint.
- ``majority_rows`` — "Large Language Models Can Self-Improve" (arXiv:2210.11610) and the easy-to-hard
  rounds of "Self-Improving Transformers Overcome Easy-to-Hard and Length Generalization Challenges"
  (arXiv:2502.01612): no
  gold; the pseudo-label is the majority answer of the k samples (``answers.majority`` through the task's
  ``equivalent``), and the completions agreeing with it are kept when its vote share (over all k samples,
  unparseable ones included) reaches a threshold. Optional per-completion filter (length, plausibility).
- ``greedy_rows`` — the no-filter control: the model's own greedy completion, whatever it says (even cut
  at ``max_tokens``: the control differs from the voting methods only in not filtering).

The trace shape the training loop writes (and these functions read): step ``generate`` (prompt, k completions,
their answers, verdicts where a verifier ran), optionally step ``rationalise`` (hinted prompt; ``info`` holds
``train_prompt``). For the filtering builders a completion that failed (``finish_reason='error'``) or was
cut at ``max_tokens`` (``'length'``) is never a training target; ``row_stats`` counts both. A round whose
generation lost more than ``MAX_GENERATION_ERROR_RATE`` of its completions builds no data at all
(``check_generation_errors``).

Not covered: preference pairs (``training/dpo.py``), weighting rows by confidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..answers import majority
from ..errors import RunIncomplete
from ..records import Completion, Record, Trace

MAX_GENERATION_ERROR_RATE = 0.05
"""The share of a round's completions that may fail (requests past their retries) before the round builds no
data. Failed samples are skipped by every builder, but failures are not random: timeouts hit long
generations and hard prompts first, so dropping them tilts the kept rows towards easy examples. Up to 5 % of
a round's samples bounds that tilt to a few points of the data while a rare 503 past retries does not stop a
long run; above it the round is refused and the run stored 'incomplete' (``--resume`` generates it again)."""


@dataclass(frozen=True)
class SFTRow(Record):
    """One prompt-completion training row and where it came from."""

    prompt: str
    """The prompt as the model sees it at inference (never the hinted prompt)."""
    completion: str
    """The target text; TRL appends EOS."""
    example_id: str
    """The example the row answers."""
    source: str = "sample"
    """'sample', 'rationalised', 'greedy', 'pseudo' or 'replay'."""
    answer: str | None = None
    """The extracted answer of the completion."""
    round_idx: int = 0
    """The round whose generation produced the row."""

    def trl(self) -> dict[str, str]:
        return {"prompt": self.prompt, "completion": self.completion}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SFTRow:
        return cls(**d)


@dataclass(frozen=True)
class PseudoLabel(Record):
    """The majority-vote label of one example's sample pool."""

    example_id: str
    """The example voted on."""
    label: str | None
    """The majority answer, None when no sample parsed."""
    votes: int
    """Samples agreeing with the label."""
    parsed: int
    """Samples with a parseable answer."""
    n: int
    """All samples, unparseable and failed ones included (the share's denominator)."""
    accepted: bool
    """Vote share reached the threshold (the label was used)."""
    kept: int = 0
    """Completions kept as rows (agreeing, passing the per-completion filter, after dedupe and cap)."""

    @property
    def share(self) -> float:
        return self.votes / self.n if self.n else 0.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PseudoLabel:
        return cls(**d)


def trainable(completion: Completion) -> bool:
    """A completion that can be a target: not failed, not truncated, not empty."""
    return completion.finish_reason == "stop" and bool(completion.text)


def complete_targets(task, traces: Sequence[Trace]) -> list[Trace]:
    """Copies of ``traces`` whose truncated generate-step completions are cut to the part the task says is
    already complete (``task.complete_part``: a code task's text up to its closed code block), marked
    finished, so they can be training targets; where there is no such part they stay truncated (and are never
    targets). The answer was read from that part, so the target is what was checked. The stored traces are
    not changed."""
    import dataclasses

    def closed(c: Completion) -> Completion:
        part = task.complete_part(c.text) if c.finish_reason == "length" else None
        return dataclasses.replace(c, text=part, finish_reason="stop") if part else c

    out = []
    for t in traces:
        steps = tuple(dataclasses.replace(s, completions=tuple(closed(c) for c in s.completions))
                      if s.kind == "generate" else s for s in t.steps)
        out.append(dataclasses.replace(t, steps=steps))
    return out


def target_text(completion: Completion, suffix: str = "") -> str:
    """The completion as a training target: its text plus ``suffix`` (e.g. the stop string the task's
    format ends answers with, which the backend cut off)."""
    return completion.text + suffix


def correct_rows(traces: Sequence[Trace], *, suffix: str = "", dedupe: bool = True,
                 max_per_example: int | None = None, round_idx: int = 0) -> list[SFTRow]:
    """STaR / ReST^EM: completions with a ``correct=True`` verdict, rationalisations trained without the
    hint."""
    rows = []
    for t in traces:
        picked = []
        for step in t.steps:
            if step.kind not in ("generate", "rationalise"):
                continue
            prompt = step.info.get("train_prompt", step.prompt) if step.kind == "rationalise" else step.prompt
            source = "rationalised" if step.kind == "rationalise" else "sample"
            for c, a, v in zip(step.completions, step.answers, step.verdicts):
                if v.correct is True and trainable(c):
                    picked.append(SFTRow(prompt, target_text(c, suffix), t.example_id, source, a, round_idx))
        rows.extend(_limit(picked, dedupe, max_per_example))
    return rows


def majority_rows(traces: Sequence[Trace], equivalent: Callable[[str | None, str | None], bool] | None, *,
                  threshold: float, keep: Callable[[str, Completion, str], bool] | None = None,
                  suffix: str = "", dedupe: bool = True, max_per_example: int | None = None,
                  round_idx: int = 0) -> tuple[list[SFTRow], list[PseudoLabel]]:
    """LMSI / easy-to-hard: rows agreeing with the majority answer where its vote share >= ``threshold``.

    ``keep(example_id, completion, label)`` is an extra per-completion filter (length, plausibility). The
    share's denominator is every sample, so a pool that is mostly unreadable is not confident.
    """
    rows, labels = [], []
    for t in traces:
        step = t.first("generate")
        label, votes, parsed = majority(step.answers, equivalent)
        n = len(step.completions)
        accepted = label is not None and n > 0 and votes / n >= threshold
        picked = []
        if accepted:
            for c, a in zip(step.completions, step.answers):
                if (a is not None and (equivalent or str.__eq__)(a, label) and trainable(c)
                        and (keep is None or keep(t.example_id, c, label))):
                    picked.append(SFTRow(step.prompt, target_text(c, suffix), t.example_id, "pseudo", a,
                                         round_idx))
        picked = _limit(picked, dedupe, max_per_example)
        rows.extend(picked)
        labels.append(PseudoLabel(t.example_id, label, votes, parsed, n, accepted, kept=len(picked)))
    return rows, labels


def greedy_rows(traces: Sequence[Trace], *, suffix: str = "", round_idx: int = 0) -> list[SFTRow]:
    """The no-filter control: each example's first (greedy) completion, right or wrong, parseable or not,
    truncated or not — exactly what the model said. Only failed requests and empty texts are skipped (there
    is no target in them)."""
    rows = []
    for t in traces:
        step = t.first("generate")
        if step.completions and step.completions[0].ok and step.completions[0].text:
            rows.append(SFTRow(step.prompt, target_text(step.completions[0], suffix), t.example_id,
                               "greedy", step.answers[0], round_idx))
    return rows


def check_generation_errors(traces: Sequence[Trace], round_idx: int) -> dict[str, Any]:
    """Failed and total completions of a round's generation; ``RunIncomplete`` when the failed share exceeds
    ``MAX_GENERATION_ERROR_RATE``, so that no data is built from the round."""
    comps = [c for t in traces for s in t.steps for c in s.completions]
    failed = sum(not c.ok for c in comps)
    rate = failed / len(comps) if comps else 0.0
    if rate > MAX_GENERATION_ERROR_RATE:
        why = next((c.error for c in comps if not c.ok and c.error), "no error message")
        raise RunIncomplete(f"round {round_idx}: {failed} of {len(comps)} generated completions failed "
                            f"({rate:.0%} > {MAX_GENERATION_ERROR_RATE:.0%}, e.g. {why[:160]}); no data "
                            f"was built from this round — fix the server and resume the run")
    return {"completions": len(comps), "failed": failed, "error_rate": rate}


def row_stats(traces: Sequence[Trace], rows: Sequence[SFTRow]) -> dict[str, Any]:
    """Counts that make a round's data auditable: samples, failures, truncations, rows by source."""
    comps = [c for t in traces for s in t.steps if s.kind in ("generate", "rationalise")
             for c in s.completions]
    by_source: dict[str, int] = {}
    for r in rows:
        by_source[r.source] = by_source.get(r.source, 0) + 1
    return {
        "examples": len(traces),
        "samples": len(comps),
        "failed": sum(c.finish_reason == "error" for c in comps),
        "truncated": sum(c.finish_reason == "length" for c in comps),
        "rows": len(rows),
        "examples_with_rows": len({r.example_id for r in rows}),
        "rows_by_source": by_source,
    }


def label_precision(labels: Iterable[PseudoLabel], gold: Callable[[str, str | None], bool | None]
                    ) -> dict[str, Any]:
    """How often accepted pseudo-labels equal the gold answer — reported, never used to filter.

    ``gold(example_id, label)`` is the task's gold check (None where there is no gold)."""
    labels = list(labels)
    accepted = [lb for lb in labels if lb.accepted]
    checks = [gold(lb.example_id, lb.label) for lb in accepted]
    decided = [c for c in checks if c is not None]
    all_checks = [gold(lb.example_id, lb.label) for lb in labels]
    all_decided = [c for c in all_checks if c is not None]
    return {
        "examples": len(labels),
        "accepted": len(accepted),
        "coverage": len(accepted) / len(labels) if labels else None,
        "precision": sum(decided) / len(decided) if decided else None,
        "precision_n": len(decided),
        "majority_accuracy": sum(all_decided) / len(all_decided) if all_decided else None,
        "mean_share": sum(lb.share for lb in labels) / len(labels) if labels else None,
    }


def _limit(rows: list[SFTRow], dedupe: bool, cap: int | None) -> list[SFTRow]:
    if dedupe:
        seen, unique = set(), []
        for r in rows:
            if (r.prompt, r.completion) not in seen:
                seen.add((r.prompt, r.completion))
                unique.append(r)
        rows = unique
    return rows if cap is None else rows[:cap]
