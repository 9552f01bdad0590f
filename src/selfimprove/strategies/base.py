"""The Strategy contract and the bookkeeping every strategy shares.

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
    """One batched generate call turned into one Step per prompt, with extracted answers."""
    params = params if params.stop else params.replace(stop=tuple(task.stop))
    batches = backend.generate(list(prompts), params)
    texts = [c.text for comps in batches for c in comps if c.ok]
    extracted = iter(task.extract_many(texts))
    steps = []
    for prompt, comps in zip(prompts, batches, strict=True):
        answers = tuple(next(extracted) if c.ok else None for c in comps)
        steps.append(Step(kind=kind, prompt=prompt, completions=tuple(comps), answers=answers))
    return steps


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
    failed = any(c.finish_reason == "error" for s in steps for c in s.completions)
    return Trace(example_id=example.id, strategy=name, steps=tuple(steps), initial_answer=initial_answer,
                 final_answer=final_answer, confidence=confidence, status="error" if failed else "ok",
                 info=dict(info), **spent(steps))


def score_traces(task, examples: Sequence[Example], traces: Sequence[Trace]) -> list[Trace]:
    """Fill ``correct`` / ``initial_correct`` with the task's gold check (None where undecidable)."""
    by_id = {e.id: e for e in examples}
    pairs = [(by_id[t.example_id], a) for t in traces for a in (t.final_answer, t.initial_answer)]
    checks = iter(task.check_batch(pairs))
    return [t.replace(correct=next(checks), initial_correct=next(checks)) for t in traces]


def first_completion(steps: Sequence[Step]) -> Completion | None:
    for s in steps:
        if s.completions:
            return s.completions[0]
    return None
