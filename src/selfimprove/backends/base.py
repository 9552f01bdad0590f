"""The Backend contract: batch in, batch out.

``generate(prompts, params)`` returns one list of ``params.n`` completions per prompt. A backend that can
score text offers ``loglikelihood(prompts, continuations)``. Each backend declares what it can do in
``capabilities``; a run that needs something missing refuses to start (``require``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import CapabilityError
from ..records import Completion, SamplingParams


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do."""

    seed: bool = False
    """The same seed and parameters give the same completions."""
    logprobs: bool = False
    """Completions carry per-token log-probabilities of the sampled tokens."""
    loglikelihood: bool = False
    """``loglikelihood(prompts, continuations)`` is available."""
    chat_template: bool = False
    """The backend can apply a chat template to a chat-style prompt."""
    trainable: bool = False
    """Weights are local and a trainer can update them (the backend is a policy)."""


@runtime_checkable
class Backend(Protocol):
    name: str
    capabilities: Capabilities

    def fingerprint(self) -> str:
        """A string that changes when the model's weights or identity change (the cache key)."""
        ...

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        """One list of ``params.n`` completions per prompt, in prompt order."""
        ...


def require(backend: Backend, *needed: str) -> None:
    """Refuse to start when ``backend`` lacks one of the ``needed`` capability names."""
    missing = [c for c in needed if not getattr(backend.capabilities, c)]
    if missing:
        raise CapabilityError(
            f"backend '{backend.name}' lacks capability {', '.join(missing)}; "
            "choose a backend that declares it (see `selfimprove eval --help`)"
        )


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the first stop string; return (text, stopped)."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def greedy(backend: Backend, prompts: Sequence[str], max_tokens: int, stop: tuple[str, ...] = ()
           ) -> list[Completion]:
    """One batched greedy call, one completion per prompt."""
    if not prompts:
        return []
    params = SamplingParams(n=1, temperature=0.0, max_tokens=max_tokens, stop=tuple(stop))
    return [row[0] for row in backend.generate(list(prompts), params)]
