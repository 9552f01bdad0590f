"""A deterministic fake backend for fast tests: prompt patterns → completions with log-probabilities.

Rules are tried in order; the first whose regular expression matches the prompt (``re.search``) answers.
A rule's replies are a list; sample ``i`` of a prompt gets ``replies[i % len(replies)]`` when sampling and
``replies[0]`` when greedy. A reply is a text, or a ``(text, logprob_per_token)`` pair. Tokens are
characters, so token counts and log-probabilities are predictable. A reply of ``ScriptedBackend.FAIL``
produces a failed completion (finish_reason 'error'), as a server past its retries would.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence

from ..records import Completion, SamplingParams
from .base import Capabilities, apply_stop

Reply = str | tuple[str, float]


class ScriptedBackend:
    name = "scripted"
    capabilities = Capabilities(seed=True, logprobs=True, loglikelihood=True)
    FAIL = "\x00FAIL"

    def __init__(self, rules: Sequence[tuple[str, Sequence[Reply] | Callable[[str, int], Reply]]] = (),
                 default: Reply | None = "", loglikelihoods: dict[str, float] | None = None,
                 ll: Callable[[str, str], float] | None = None) -> None:
        self.rules = [(re.compile(p), r) for p, r in rules]
        self.default = default
        self.loglikelihoods = dict(loglikelihoods or {})
        self.ll = ll
        self.scored: list[tuple[str, str]] = []
        """Every (prompt, continuation) scored by ``loglikelihood``, in order (tests read this)."""
        self.calls: list[tuple[str, SamplingParams]] = []
        """Every prompt received, in order, with its parameters (tests read this)."""

    def fingerprint(self) -> str:
        spec = [(p.pattern, r if not callable(r) else r.__qualname__) for p, r in self.rules]
        return "scripted-" + hashlib.sha256(json.dumps([spec, self.default], default=str).encode()
                                            ).hexdigest()[:16]

    def _reply(self, prompt: str, i: int, params: SamplingParams) -> Reply:
        for pattern, replies in self.rules:
            if pattern.search(prompt):
                if callable(replies):
                    return replies(prompt, i)
                return replies[0] if params.greedy else replies[i % len(replies)]
        if self.default is None:
            raise KeyError(f"scripted backend has no rule for prompt: {prompt[:80]!r}")
        return self.default

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for prompt in prompts:
            self.calls.append((prompt, params))
            row = []
            for i in range(params.n):
                reply = self._reply(prompt, i, params)
                text, lp = (reply, -0.1) if isinstance(reply, str) else reply
                if text == self.FAIL:
                    row.append(Completion(text="", finish_reason="error", prompt_tokens=len(prompt),
                                          error="scripted failure"))
                    continue
                text, _ = apply_stop(text, params.stop)
                finish = "stop"
                if len(text) > params.max_tokens:
                    text, finish = text[: params.max_tokens], "length"
                row.append(Completion(text=text, token_logprobs=tuple([lp] * len(text)), finish_reason=finish,
                                      prompt_tokens=len(prompt), completion_tokens=len(text),
                                      logprobs_source="raw"))
            out.append(row)
        return out

    def loglikelihood(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Scripted: ``ll(prompt, continuation)`` when given, else ``loglikelihoods[continuation]``, else -0.1
        per character."""
        if len(prompts) != len(continuations):
            raise ValueError(f"loglikelihood needs one continuation per prompt, got {len(prompts)} prompts "
                             f"and {len(continuations)} continuations")
        self.scored.extend(zip(prompts, continuations))
        if self.ll is not None:
            return [self.ll(p, c) for p, c in zip(prompts, continuations)]
        return [self.loglikelihoods.get(c, -0.1 * len(c)) for c in continuations]
