"""The Strategy contract (DESIGN §4) and the bookkeeping every strategy shares.

A strategy is a frozen dataclass whose fields are its settings; ``run(backend, task, examples)`` returns one
``Trace`` per example, in order. It records every step and the tokens it spent. Strategies never see the gold
answer: ``task.check`` is applied to finished traces by ``score_traces``, outside the strategy (the oracle
strategies of the inference issue are the one labelled exception).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..backends.base import Backend
from ..records import Completion, Example, SamplingParams, Step, Trace


@runtime_checkable
class Strategy(Protocol):
    name: str

    def run(self, backend: Backend, task, examples: Sequence[Example]) -> list[Trace]: ...


def describe(strategy) -> str:
    """'name:key=value,...' for the settings that differ from the defaults (the table's row label)."""
    parts = []
    for f in dataclasses.fields(strategy):
        value = getattr(strategy, f.name)
        default = f.default if f.default is not dataclasses.MISSING else None
        if value != default:
            parts.append(f"{f.name}={value}")
    return strategy.name + (":" + ",".join(parts) if parts else "")


def generate_step(backend: Backend, task, prompts: Sequence[str], params: SamplingParams,
                  kind: str = "generate") -> list[Step]:
    """One batched generate call turned into one Step per prompt, with extracted answers.

    A completion cut at ``max_tokens`` (finish reason 'length') or a failed request has answer None: a
    truncated text has not reached its answer, and a number read from it ("… we add 1 to" → 1) must neither
    vote nor score — unless the task reads its answer from the first word (``task.answer_first``: "No, it
    does not ..."). ``info['truncated']`` lists the indices of the truncated completions."""
    params = params if params.stop else params.replace(stop=tuple(task.stop))
    batches = backend.generate(list(prompts), params)
    texts = [c.text for comps in batches for c in comps if readable(c, task)]
    extracted = iter(task.extract_many(texts))
    steps = []
    for prompt, comps in zip(prompts, batches, strict=True):
        answers = tuple(next(extracted) if readable(c, task) else None for c in comps)
        cut = [j for j, c in enumerate(comps) if c.finish_reason == "length"]
        steps.append(Step(kind=kind, prompt=prompt, completions=tuple(comps), answers=answers,
                          info={"truncated": cut} if cut else {}))
    return steps


def readable(completion: Completion, task=None) -> bool:
    """A completion whose text can carry an answer: the request succeeded, and it was not cut at max_tokens or
    ``task`` reads its answer from the first word (``answer_first``)."""
    return completion.ok and (completion.finish_reason != "length" or bool(getattr(task, "answer_first", False)))


def spent(steps: Sequence[Step]) -> dict[str, int]:
    """Tokens and calls over ``steps``. A prompt sent once for n samples counts its tokens once per sample
    only when the backend reports it so; we count what the backend reported."""
    prompt_tokens = completion_tokens = calls = 0
    for s in steps:
        if not s.completions:
            continue
        calls += 1
        # The prompt is processed once per call; backends report prompt_tokens per completion.
        prompt_tokens += s.completions[0].prompt_tokens
        completion_tokens += sum(c.completion_tokens for c in s.completions)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "calls": calls}


def make_trace(example: Example, name: str, steps: Sequence[Step], *, initial_answer: str | None,
               final_answer: str | None, confidence: float | None = None, **info) -> Trace:
    """A trace over ``steps``; ``info['truncated']`` counts the answer-bearing completions (steps with
    extracted answers) cut at max_tokens, ``info['unscored']`` the verdicts left undecided (score None) in its
    verification steps, ``info['verdicts']`` all those verdicts (each only when there is one to count, and
    unless the strategy set it itself)."""
    failed = any(not c.ok for s in steps for c in s.completions)
    if failed:  # a failed request is no answer: nothing the strategy settled on stands
        initial_answer = final_answer = confidence = None
    cut = sum(c.finish_reason == "length" for s in steps if s.answers for c in s.completions)
    if cut:
        info.setdefault("truncated", cut)
    verdicts = [v for s in steps for v in s.verdicts]
    if verdicts:
        info.setdefault("verdicts", len(verdicts))
        info.setdefault("unscored", sum(v.score is None for v in verdicts))
    return Trace(example_id=example.id, strategy=name, steps=tuple(steps), initial_answer=initial_answer,
                 final_answer=final_answer, confidence=confidence, status="error" if failed else "ok",
                 info=dict(info), **spent(steps))


def score_traces(task, examples: Sequence[Example], traces: Sequence[Trace]) -> list[Trace]:
    """Fill ``correct`` / ``initial_correct`` with the task's gold check (None where undecidable). A trace
    whose requests failed (``status != 'ok'``) is not scored: a failure is not the model's answer."""
    by_id = {e.id: e for e in examples}
    answered = [t for t in traces if t.status == "ok"]
    pairs = [(by_id[t.example_id], a) for t in answered for a in (t.final_answer, t.initial_answer)]
    checks = iter(task.check_batch(pairs))
    return [t.replace(correct=next(checks), initial_correct=next(checks)) if t.status == "ok" else t
            for t in traces]


def first_completion(steps: Sequence[Step]) -> Completion | None:
    for s in steps:
        if s.completions:
            return s.completions[0]
    return None
