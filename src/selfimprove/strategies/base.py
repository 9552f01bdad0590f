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
    """One batched generate call turned into one Step per prompt, with extracted answers.

    A completion cut at ``max_tokens`` (finish reason 'length') or a failed request has answer None: a
    truncated text has not reached its answer, and a number read from it ("… we add 1 to" → 1) must neither
    vote nor score — except the part the task says is already complete (``task.complete_part``: a closed code
    block; BoolQ's first-word answer). ``info['truncated']`` lists the indices of the truncated completions;
    ``info['sent_prompt']`` is the prompt as the model received it, where the backend changed it (a chat
    template)."""
    params = params if params.stop else params.replace(stop=tuple(task.stop))
    batches = backend.generate(list(prompts), params)
    render = getattr(backend, "rendered_prompt", None)
    usable = [[answer_text(task, c) for c in comps] for comps in batches]
    extracted = iter(task.extract_many([t for row in usable for t in row if t is not None]))
    steps = []
    for prompt, comps, row in zip(prompts, batches, usable, strict=True):
        answers = tuple(None if t is None else next(extracted) for t in row)
        cut = [j for j, c in enumerate(comps) if c.finish_reason == "length"]
        info: dict = {"truncated": cut} if cut else {}
        if render is not None and (sent := render(prompt)) is not None and sent != prompt:
            info["sent_prompt"] = sent
        steps.append(Step(kind=kind, prompt=prompt, completions=tuple(comps), answers=answers, info=info))
    return steps


def answer_text(task, completion: Completion) -> str | None:
    """The text an answer may be extracted from: a readable completion's text; for one cut at max_tokens, the
    part the task says is already complete (``task.complete_part``: a closed code block of a code task, a
    yes/no reply), else None."""
    if readable(completion):
        return completion.text
    return task.complete_part(completion.text) if completion.ok else None


def readable(completion: Completion) -> bool:
    """A completion whose text can carry an answer: the request succeeded and was not cut at max_tokens."""
    return completion.ok and completion.finish_reason != "length"


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
