"""Shared records: the one vocabulary every module speaks.

Every record is a frozen dataclass that round-trips through JSON with ``to_dict`` / ``from_dict``.
Nothing provider-shaped (an OpenAI dict, an HF ``GenerateOutput``) crosses a module boundary: backends
translate into these records before returning.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

_SCALARS = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """Turn dataclasses, tuples and nested containers into JSON-ready plain values.

    Scalars return at once and each dataclass's field names are looked up once: a trace holds one float per
    token, and this runs for every trace a run stores (twice: its run directory and the run store)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    names = _FIELD_NAMES.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, (list, tuple)):
        return [v if type(v) in _SCALARS else _plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class Record:
    """Mixin: JSON round-trip for frozen dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class SamplingParams(Record):
    """How to sample, with vLLM's names and meanings."""

    n: int = 1
    """Completions per prompt."""
    temperature: float = 0.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    """Nucleus sampling mass; 1.0 disables it."""
    top_k: int = -1
    """Keep the k most likely tokens; -1 disables it (vLLM's convention)."""
    max_tokens: int = 256
    """Upper bound on generated tokens per completion."""
    stop: tuple[str, ...] = ()
    """Generation stops before the first occurrence of any of these strings (not included in the text)."""
    seed: int | None = None
    """Seed for sampling; the same seed and parameters give the same completions."""
    logprobs: bool = True
    """Return per-token log-probabilities of the sampled tokens."""

    def __post_init__(self) -> None:
        for name, kind in (("n", int), ("top_k", int), ("max_tokens", int), ("temperature", (int, float)),
                           ("top_p", (int, float))):
            value = getattr(self, name)
            if not isinstance(value, kind) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"SamplingParams.{name} must be a finite number, got {value!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise ValueError(f"SamplingParams.seed must be an integer or None, got {self.seed!r}")
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.top_k == 0 or self.top_k < -1:
            raise ValueError(f"SamplingParams.top_k must be -1 (off) or >= 1, got {self.top_k}")
        if self.max_tokens < 1:
            raise ValueError(f"SamplingParams.max_tokens must be >= 1, got {self.max_tokens}")
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def replace(self, **changes: Any) -> SamplingParams:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamplingParams:
        d = dict(d)
        d["stop"] = tuple(d.get("stop", ()))
        return cls(**d)


@dataclass(frozen=True)
class Completion(Record):
    """One sampled text with its token log-probabilities and finish reason."""

    text: str
    """The generated text, stop string excluded."""
    token_logprobs: tuple[float, ...] | None = None
    """Log-probability of each sampled token, or None where the backend cannot give them."""
    finish_reason: str = "stop"
    """'stop' (EOS or a stop string), 'length' (max_tokens), or 'error' (a failed request)."""
    prompt_tokens: int = 0
    """Tokens in the prompt, as the backend counted them."""
    completion_tokens: int = 0
    """Tokens generated."""
    logprobs_source: str | None = None
    """'raw' (the model's distribution) or 'processed' (after temperature/top-k/top-p), when known."""
    error: str | None = None
    """Why the request failed, when finish_reason == 'error'. Never contains secrets."""
    tokens: tuple[str, ...] | None = None
    """The text of each sampled token (decoded alone, one per log-probability) where the backend gives it, for
    showing which tokens were unlikely; None otherwise. Decoded alone, a piece may differ from its share of
    ``text`` (a multi-byte character split over tokens), so nothing is computed from it."""

    def __post_init__(self) -> None:
        if self.tokens is not None and not isinstance(self.tokens, tuple):
            object.__setattr__(self, "tokens", tuple(self.tokens))
        if self.token_logprobs is not None and not isinstance(self.token_logprobs, tuple):
            object.__setattr__(self, "token_logprobs", tuple(self.token_logprobs))

    @property
    def ok(self) -> bool:
        """False for a request that failed past its retries: it is no answer and is never extracted."""
        return self.finish_reason != "error"

    @property
    def empty(self) -> bool:
        """A request that succeeded but returned no text (or only whitespace): the model's answer,
        unparseable, and counted apart (``metrics.accuracy``'s ``empty``)."""
        return self.ok and not self.text.strip()

    @property
    def sum_logprob(self) -> float | None:
        return None if self.token_logprobs is None else float(sum(self.token_logprobs))

    @property
    def mean_logprob(self) -> float | None:
        if not self.token_logprobs:
            return None
        return float(sum(self.token_logprobs)) / len(self.token_logprobs)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Completion:
        return cls(**d)


@dataclass(frozen=True)
class Example(Record):
    """One task item."""

    id: str
    """Stable identifier, unique within a task split."""
    question: str
    """The problem as shown to the model (before the task's prompt template)."""
    answer: str | None = None
    """Normalised gold answer, or None where the task has no gold label."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Task-specific fields (choices, difficulty, the full gold solution, ...)."""

    def __hash__(self) -> int:
        return hash(self.id)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Example:
        return cls(**d)


@dataclass(frozen=True)
class Verdict(Record):
    """A verifier's judgement of one answer."""

    score: float | None
    """Higher is better; None when the verifier could not decide."""
    correct: bool | None
    """True / False, or None when undecidable (unparseable answer, judge output we could not read)."""
    reason: str = ""
    """Why: 'match', 'mismatch', 'unparseable', the judge's words, ..."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        return cls(**d)


@dataclass(frozen=True)
class Step(Record):
    """One thing a strategy did: a call to the model, a vote, a verification."""

    kind: str
    """'generate', 'verify', 'feedback', 'refine', 'vote', ..."""
    prompt: str = ""
    """The prompt sent, where there was one."""
    completions: tuple[Completion, ...] = ()
    """What the model returned for this step."""
    answers: tuple[str | None, ...] = ()
    """Extracted answers, one per completion (None = unparseable)."""
    verdicts: tuple[Verdict, ...] = ()
    """Verdicts, where the step verified something."""
    info: dict[str, Any] = field(default_factory=dict)
    """Step-specific details (vote counts, thresholds, ...)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Step:
        d = dict(d)
        d["completions"] = tuple(Completion.from_dict(c) for c in d.get("completions", ()))
        d["answers"] = tuple(d.get("answers", ()))
        d["verdicts"] = tuple(Verdict.from_dict(v) for v in d.get("verdicts", ()))
        return cls(**d)


@dataclass(frozen=True)
class Trace(Record):
    """Everything a strategy did for one example."""

    example_id: str
    """The example this trace answers."""
    strategy: str
    """The strategy's name and settings, e.g. 'self-consistency:n=16'."""
    steps: tuple[Step, ...] = ()
    """Every step in order."""
    initial_answer: str | None = None
    """The first answer produced (before any correction), None if unparseable."""
    final_answer: str | None = None
    """The answer the strategy settled on, None if unparseable."""
    confidence: float | None = None
    """The strategy's confidence in final_answer (vote share, P(True), ...), if it has one."""
    correct: bool | None = None
    """final_answer judged by the task's default verifier; None if undecidable."""
    initial_correct: bool | None = None
    """initial_answer judged the same way."""
    prompt_tokens: int = 0
    """Prompt tokens spent over all steps."""
    completion_tokens: int = 0
    """Completion tokens spent over all steps."""
    calls: int = 0
    """Model calls (prompts sent) over all steps."""
    status: str = "ok"
    """'ok', or 'error' when a request failed past its retries: such a trace is never scored (``correct`` is
    None), is counted under ``errors`` apart from ``unparsed``, and ``--resume`` runs it again."""
    info: dict[str, Any] = field(default_factory=dict)
    """Strategy-specific details (samples used, labels like 'oracle')."""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def replace(self, **changes: Any) -> Trace:
        return dataclasses.replace(self, **changes)

    def first(self, kind: str = "generate") -> Step:
        """The first step of ``kind`` (an empty one when there is none)."""
        return next((s for s in self.steps if s.kind == kind), Step(kind=kind))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trace:
        d = dict(d)
        d["steps"] = tuple(Step.from_dict(s) for s in d.get("steps", ()))
        return cls(**d)


@dataclass(frozen=True)
class Node(Record):
    """One node of a search tree over reasoning steps (beam, MCTS, DVTS): a partial solution and its value.

    The root (``parent`` None, ``step`` '') is the bare prompt. A node's partial solution is its ``prefix``,
    the concatenation of the steps on the path from the root, so ``prefix == parent.prefix + step``."""

    id: int
    """Index within its tree (the root is 0); children have larger ids than their parent."""
    parent: int | None
    """The parent's id, None for the root."""
    depth: int
    """Steps from the root (the root is 0)."""
    step: str
    """The text this node adds to its parent's partial solution (delimiter included)."""
    prefix: str
    """The partial solution: every step from the root to this node, concatenated."""
    value: float | None = None
    """The node's own step value when it was evaluated (None: not evaluated, or the value could not
    decide)."""
    visits: int = 0
    """Times a search counted the node (MCTS visit count; 1 for an evaluated beam/DVTS node, 0 if never)."""
    value_sum: float = 0.0
    """Sum of the values back-propagated through the node (MCTS: mean value Q = value_sum / visits)."""
    tokens: int = 0
    """Completion tokens generated for this node's step (its expansion share; rollouts are in ``info``)."""
    logprob: float | None = None
    """Sum of the raw token log-probabilities of ``step`` (None when the backend gave none)."""
    terminal: bool = False
    """True when the partial solution is finished: it wrote its final answer, stopped, or hit a limit."""
    answer: str | None = None
    """``task.extract(prefix)`` for a terminal node (None: unparseable or not terminal)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Value parts (likelihood, self_eval, rollout answers), why a node ended, whether a search kept it."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Node:
        return cls(**d)
