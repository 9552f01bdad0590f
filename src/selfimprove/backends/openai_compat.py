"""A backend for any OpenAI-compatible server (vLLM, SGLang, llama.cpp, ``transformers serve``, hosted APIs).

Over 400 lines because retries, deadlines, the capability probe and both endpoints (completions, chat) share
one request path; splitting them would pass that state between modules.

Async with bounded concurrency (``httpx.AsyncClient`` + a semaphore); ``generate`` is synchronous and runs its
own event loop (in a worker thread if the caller's thread runs one; async code calls ``agenerate``). Base URLs
are balanced by least-in-flight; a retry avoids the servers that failed it. One retry layer (httpx's are off):

- retried, with full-jitter exponential backoff or the server's ``Retry-After`` (seconds or HTTP date,
  capped): 408, 409, 429, 5xx, connection errors, connect/read timeouts, non-JSON (truncated) bodies, empty
  ``choices``;
- failed at once, since a retry gets the same answer: other 3xx/4xx, JSON of the wrong shape, and a choice
  whose finish_reason is not stop/length (its text kept, marked 'error');
- past ``max_attempts`` or the total deadline, the request becomes ``Completion(finish_reason="error")`` whose
  ``error`` names the status and the attempts; the run goes on and the output keeps its prompts x n shape.

``n`` is sent natively; a server that returns fewer choices (``transformers serve`` ignores ``n``) is recorded
in ``info["n_native"]`` and the missing samples are fanned out as ``n=1`` requests with ``seed + i``. The API
key is read from ``api_key_env`` when a session opens, is held by no attribute, and is scrubbed from every
message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import email.utils
import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..chat import messages, plain
from ..errors import CapabilityError, UserError
from ..records import Completion, SamplingParams
from ..specs import convert_option
from .base import Capabilities, apply_stop
from .deadlines import spec_deadlines, strip_credentials

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429})  # and every 5xx
_PROBE = "Write one random word:"
"""The start-up probe's prompt: its samples at temperature 1 should differ."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one logical request may try."""

    max_attempts: int = 5
    """Attempts per request, the first included."""
    base_delay: float = 0.5
    """Backoff before retry k is uniform in [0, min(max_delay, base_delay * 2**(k-1))] (full jitter)."""
    max_delay: float = 30.0
    """Upper bound of one backoff sleep."""
    retry_after_cap: float = 60.0
    """A server's Retry-After is honoured up to this many seconds."""
    connect_timeout: float = 10.0
    """Seconds to open a connection."""
    read_timeout: float = 300.0
    """Seconds without a byte from the server before the attempt fails (a stall)."""
    total_timeout: float = 900.0
    """Seconds for the whole request, every attempt and sleep included, counted from its first send."""

    def __post_init__(self) -> None:
        for name, low in (("max_attempts", 1), ("base_delay", 0), ("max_delay", 0), ("retry_after_cap", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"RetryPolicy.{name} must be >= {low}, got {getattr(self, name)}")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RetryPolicy.{name} must be > 0 seconds, got {getattr(self, name)}")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter sleep after failed attempt number ``attempt`` (1-based)."""
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


def parse_retry_after(value: str | None, cap: float, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), capped; None if
    absent/unreadable."""
    try:
        seconds = float(value or "nan")
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - (time.time() if now is None
                                                                              else now)
        except (TypeError, ValueError, IndexError, AttributeError):
            return None
    return None if math.isnan(seconds) else min(max(seconds, 0.0), cap)


def redact_url(url: str) -> str:
    """The URL without user:password@ (never record credentials embedded in a URL)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class _Fail(Exception):
    """One failed attempt: why, whether to retry, and the server's Retry-After."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable, self.retry_after = retryable, retry_after


class _GiveUp(Exception):
    """A request past its retries; the message is what the Completion's ``error`` records."""


class _Session(NamedTuple):
    """Per-event-loop state: the HTTP client, the concurrency gate and the in-flight count per server."""

    client: Any
    gate: asyncio.Semaphore
    in_flight: dict[str, int]


class OpenAICompatBackend:
    """Generate through ``/v1/completions`` or ``/v1/chat/completions`` of one or more servers."""

    name = "openai"

    def __init__(self, base_urls: Sequence[str] | str, model: str | None = None, *,
                 api_key_env: str = "OPENAI_API_KEY", endpoint: str = "completions", concurrency: int = 16,
                 retry: RetryPolicy = RetryPolicy(), probe: bool = True, n_native: bool | None = None,
                 logprobs_source: str | None = None, honours_seed: bool = False, revision: str = "",
                 send_top_k: bool = True, trust_env: bool = True) -> None:
        """``model=None``: the first of ``/v1/models``, else the server's default. ``logprobs_source``: 'raw'
        or 'processed', when known. ``revision`` enters the fingerprint: set it when new weights keep an old
        name."""
        urls = [base_urls] if isinstance(base_urls, str) else base_urls
        self.base_urls, self._auth = strip_credentials([u.strip().rstrip("/") for u in urls if u.strip()])
        bad = [redact_url(u) for u in self.base_urls if urlsplit(u).scheme not in ("http", "https")]
        checks = [(bool(self.base_urls) and not bad, "base_urls", bad, "http(s)://HOST:PORT/v1 URLs"),
                  (endpoint in ("completions", "chat"), "endpoint", endpoint, "'completions' or 'chat'"),
                  (concurrency >= 1, "concurrency", concurrency, ">= 1"),
                  (logprobs_source in (None, "raw", "processed"), "logprobs_source", logprobs_source,
                   "raw/processed")]
        for ok, fld, value, want in checks:
            if not ok:
                raise UserError(f"must be {want}, got {value!r}", field=fld)
        self.model, self.api_key_env, self.endpoint = model, api_key_env, endpoint
        self.concurrency, self.retry, self.revision = concurrency, retry, revision
        self.logprobs_source, self.send_top_k, self.trust_env = logprobs_source, send_top_k, trust_env
        self._rng, self._turn = random.Random(), 0
        # TLS: built once
        self._verify = None if any(u.startswith("https:") for u in self.base_urls) else False
        self._path = "/chat/completions" if endpoint == "chat" else "/completions"
        self.info: dict[str, Any] = {"servers": [redact_url(u) for u in self.base_urls], "n_native": n_native,
                                     "probe": "skipped", "model_source": "given" if model else None}
        self.capabilities = Capabilities(seed=honours_seed, logprobs=True, chat_template=endpoint == "chat")
        if model is None or probe:
            self._run(self._start(model is None, probe))

    @classmethod
    def from_spec(cls, spec: str, model_name: str | None = None, **kwargs: Any) -> OpenAICompatBackend:
        """Build from ``openai:URL[,URL2,...][@MODEL][,key=value...]``: URLs up to ``/v1``; MODEL after the
        first '@' past the last host ('org/name@rev' keeps its revision); key=value: ``chat=true`` (messages
        to ``/v1/chat/completions``, templated by the server) and the deadlines of ``backends.deadlines``."""
        parts = spec.removeprefix("openai:").split(",")
        if chat := [p for p in parts if "://" not in p and p.strip().lower().startswith("chat=")]:
            on = convert_option(chat[-1].partition("=")[2].strip(), bool, "model spec option 'chat'")
            kwargs["endpoint"] = "chat" if on else "completions"
        rest, kwargs["retry"] = spec_deadlines(",".join(p for p in parts if p not in chat),
                                               kwargs.get("retry", RetryPolicy()))
        slash = rest.find("/", rest.find("://", rest.rfind(",") + 1) + 3)
        if (at := rest.find("@", slash) if slash > 0 else -1) > 0:
            rest, model_name = rest[:at], model_name or rest[at + 1:]
        if not spec.startswith("openai:") or not rest:
            raise UserError(f"model spec {spec!r} is not openai:http://HOST:PORT/v1[,URL2][@MODEL]",
                            field="model")
        return cls(rest.split(","), model=model_name, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, {self.endpoint}, servers={self.info['servers']})"

    def fingerprint(self) -> str:
        """Model name, endpoint and revision; the servers too when the model name is the server's default."""
        ident = [self.model, self.endpoint, self.revision,
                 sorted(self.info["servers"]) if self.model is None else 0]
        return "openai-" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        """One list of ``params.n`` completions per prompt; failed requests are error completions."""
        return self._run(self.agenerate(prompts, params))

    async def agenerate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        return await self._gather(lambda s: (self._sample(s, p, params, params.n, 0) for p in prompts))

    def loglikelihood(self, prompts: Sequence[str], continuations: Sequence[str]) -> list[float]:
        """Sum of log P(continuation's tokens | prompt) via ``echo`` (a token counts when its ``text_offset``
        falls in the continuation); NaN where the request failed."""
        if not self.capabilities.loglikelihood:
            raise CapabilityError(f"server(s) {self.info['servers']} gave no echoed log-probabilities in the "
                                  f"capability probe ({self.info['probe']}); loglikelihood is unavailable")
        pairs = list(zip(prompts, continuations, strict=True))
        return self._run(self._gather(lambda s: (self._score(s, p, c) for p, c in pairs)))

    def _run(self, coro: Any) -> Any:
        """Run ``coro`` to completion from synchronous code, even when this thread already runs a loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coro).result()

    async def _gather(self, jobs: Callable[[_Session], Any]) -> list[Any]:
        async with self._session() as s:
            return list(await asyncio.gather(*jobs(s)))

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[_Session]:
        key, p = os.environ.get(self.api_key_env), self.retry
        timeout = httpx.Timeout(connect=p.connect_timeout, read=p.read_timeout, write=p.read_timeout,
                                pool=p.total_timeout)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        if self._verify is None:  # an SSL context costs ~30 ms to build: once per backend, not per call
            self._verify = httpx.create_ssl_context(trust_env=self.trust_env)
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"} if key else {},
                                     timeout=timeout,
                                     transport=httpx.AsyncHTTPTransport(retries=0, limits=limits,
                                                                        verify=self._verify),
                                     trust_env=self.trust_env, follow_redirects=False) as client:
            yield _Session(client, asyncio.Semaphore(self.concurrency), dict.fromkeys(self.base_urls, 0))

    def _pick(self, s: _Session, failed: set[str]) -> str:
        """Least in flight, ties broken in rotation, among the servers this request has not failed on yet."""
        urls, self._turn = [u for u in self.base_urls if u not in failed] or self.base_urls, self._turn + 1
        k = self._turn % len(urls)
        return min(urls[k:] + urls[:k], key=lambda u: s.in_flight[u])

    def _scrub(self, text: str) -> str:
        return (text.replace(key, "***") if (key := os.environ.get(self.api_key_env)) and len(key) >= 4
                else text)

    async def _call(self, s: _Session, method: str, path: str, body: dict | None,
                    parse: Callable[[Any], Any], policy: RetryPolicy | None = None) -> Any:
        """One logical request: attempts, deadlines and classification; ``parse`` raises ``_Fail``."""
        p = policy or self.retry
        deadline, failed, attempt, fail = float("inf"), set(), 0, None
        while True:
            attempt += 1
            try:
                # the deadline starts at the first send, not in the queue; pick when sending
                async with s.gate:
                    now, url = time.monotonic(), self._pick(s, failed)
                    deadline = min(deadline, now + p.total_timeout)
                    if now >= deadline:  # the deadline passed while queued for a slot: no further send
                        raise _GiveUp(self._scrub(f"{fail}; gave up after {attempt - 1} attempt(s): total "
                                                  f"deadline {p.total_timeout:g}s reached"))
                    s.in_flight[url] += 1
                    try:
                        async with asyncio.timeout(max(deadline - now, 0.001)):
                            resp = await s.client.request(method, url + path, json=body,
                                                          auth=self._auth.get(url))
                    finally:
                        s.in_flight[url] -= 1
                try:
                    return parse(self._check(resp))
                except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
                    raise _Fail(f"unexpected response schema ({type(e).__name__})", False)
            except _Fail as e:
                fail = e
            except TimeoutError:
                fail = _Fail(f"no response within the total deadline {p.total_timeout:g}s", False)
            except httpx.TransportError as e:  # refused, reset, closed early, connect/read timeouts
                kind = "timeout" if isinstance(e, httpx.TimeoutException) else "connection error"
                fail = _Fail(f"{kind} ({type(e).__name__}) at {redact_url(url)}", True)
            delay = fail.retry_after if fail.retry_after is not None else p.backoff(attempt, self._rng)
            why = ("not retryable" if not fail.retryable else
                   f"max_attempts={p.max_attempts} reached" if attempt >= p.max_attempts else
                   f"next try in {delay:.2f}s would pass the total deadline {p.total_timeout:g}s"
                   if time.monotonic() + delay >= deadline else None)
            if why:
                raise _GiveUp(self._scrub(f"{fail}; gave up after {attempt} attempt(s): {why}"))
            log.debug("retrying %s in %.2fs after: %s", path, delay, self._scrub(str(fail)))
            failed.add(url)
            await asyncio.sleep(delay)

    def _check(self, resp: Any) -> Any:
        """Classify one HTTP response by status and body (see the module docstring); return its JSON."""
        if (code := resp.status_code) >= 300:
            snippet = " ".join(resp.text[:200].split())
            retry = code in RETRY_STATUSES or code >= 500
            after = parse_retry_after(resp.headers.get("retry-after"), self.retry.retry_after_cap)
            raise _Fail(f"HTTP {code}" + (f": {snippet}" if snippet else ""), retry, after if retry else None)
        try:
            return json.loads(resp.content)
        except ValueError:
            raise _Fail(f"malformed JSON in a {code} response ({len(resp.content)} bytes; truncated?)", True)

    def _body(self, prompt: str, params: SamplingParams, n: int, seed_offset: int) -> dict:
        chat, p = self.endpoint == "chat", params
        body = {"model": self.model, "max_tokens": p.max_tokens, "n": n, "temperature": p.temperature,
                **({"messages": messages(prompt)} if chat else {"prompt": plain(prompt)}),
                "top_p": p.top_p if p.top_p != 1.0 else None, "stop": list(p.stop) or None,
                # top_k is a vLLM/SGLang extension; transformers serve rejects it (422)
                "top_k": p.top_k if p.top_k != -1 and self.send_top_k else None,
                "seed": None if p.seed is None else p.seed + seed_offset,
                "logprobs": (True if chat else 1) if p.logprobs and self.capabilities.logprobs else None}
        return {k: v for k, v in body.items() if v is not None}

    async def _sample(self, s: _Session, prompt: str, params: SamplingParams, want: int,
                      offset: int) -> list[Completion]:
        """Exactly ``want`` completions for ``prompt``: natively, or fanned out when the server ignores
        ``n``."""
        if want > 1 and self.info["n_native"] is False:
            parts = await asyncio.gather(
                *(self._sample(s, prompt, params, 1, offset + i) for i in range(want)))
            return [c for part in parts for c in part]
        try:
            got = await self._call(s, "POST", self._path, self._body(prompt, params, want, offset),
                                   lambda d: self._parse(d, params))
        except _GiveUp as e:
            return [Completion(text="", finish_reason="error", error=str(e)) for _ in range(want)]
        if len(got) < want:  # the server ignores n: fan out from now on
            self.info["n_native"] = False
            got = got + await self._sample(s, prompt, params, want - len(got), offset + len(got))
        return got[:want]

    def _parse(self, data: Any, params: SamplingParams) -> list[Completion]:
        choices = _choices(data)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        share = int(usage.get("completion_tokens") or 0) // len(choices)
        out = []
        for c in choices:
            text, lps, pieces = _choice_text(c, self.endpoint)
            # some servers (transformers serve) keep the stop string
            text, cut = apply_stop(text, params.stop)
            reason, error = c.get("finish_reason"), None
            finish = "length" if reason == "length" and not cut else "stop"
            if reason not in (None, "stop", "eos", "length", "end_turn", "stop_sequence") and not cut:
                finish, error = "error", self._scrub(f"server finish_reason={reason!r}")[:200]
            lps, pieces = (lps, pieces) if params.logprobs else (None, None)
            out.append(Completion(text=text, token_logprobs=lps, tokens=pieces, finish_reason=finish,
                                  error=error,
                                  prompt_tokens=int(usage.get("prompt_tokens") or 0),
                                  completion_tokens=len(lps) if lps is not None else share,
                                  logprobs_source=self.logprobs_source if lps is not None else None))
        return out

    async def _score(self, s: _Session, prompt: str, continuation: str) -> float:
        prompt = plain(prompt)  # scoring runs on /v1/completions: the conversation as plain text
        body = {**self._body(prompt + continuation, SamplingParams(max_tokens=1), 1, 0), "echo": True,
                "logprobs": 1}
        lo, hi = len(prompt), len(prompt) + len(continuation)

        def parse(data: Any) -> float:
            lp = _choices(data)[0]["logprobs"]
            if not lp.get("text_offset") or not lp.get("token_logprobs"):
                raise _Fail("no echoed logprobs/text_offset in the response", False)
            return float(sum(v for o, v in zip(lp["text_offset"], lp["token_logprobs"])
                             if lo <= o < hi and v is not None))

        try:
            return await self._call(s, "POST", "/completions", body, parse)
        except _GiveUp as e:
            log.warning("loglikelihood request failed: %s", e)
            return math.nan

    async def _start(self, resolve: bool, probe: bool) -> None:
        """Name the model from ``/v1/models`` where none was given; probe n, logprobs and echo with one tiny
        request (a second without ``echo`` if the first is refused). Failures are recorded in ``info``."""
        short = replace(self.retry, max_attempts=min(2, self.retry.max_attempts))
        async with self._session() as s:
            if resolve:
                try:
                    self.model = await self._call(s, "GET", "/models", None,
                                                  lambda d: str(d["data"][0]["id"]),
                                                  short)
                    self.info["model_source"] = "/v1/models"
                except _GiveUp as e:
                    self.info["model_source"] = f"server default (/v1/models failed: {e})"
            if not probe:
                return
            chat, data, echo = self.endpoint == "chat", None, False
            body = self._body(_PROBE, SamplingParams(n=2, temperature=1.0, max_tokens=8), 2, 0)
            for echo in (False,) if chat else (True, False):
                try:
                    data = await self._call(s, "POST", self._path, {**body, "echo": True} if echo else body,
                                            _choices, short)
                    break
                except _GiveUp as e:
                    self.info["probe"] = f"failed: {e}"
                    if not str(e).startswith("HTTP 4"):  # only a refusal (of echo, say) earns a second try
                        break
        if data is None:
            log.warning("capability probe failed (%s); assuming n native, logprobs off", self.info["probe"])
            self.capabilities = replace(self.capabilities, logprobs=False)
            return
        lp = data[0]["logprobs"] if isinstance(data[0], dict) and isinstance(data[0].get("logprobs"),
                                                                             dict) else {}
        has_lp = bool(lp.get("content") if chat else lp.get("token_logprobs"))
        has_echo = echo and bool(lp.get("text_offset")) and len(lp.get("token_logprobs") or ()) > 1
        if self.info["n_native"] is None:
            self.info["n_native"] = len(data) >= 2
        self.info.update(probe="ok", logprobs=has_lp, echo=has_echo)
        self.capabilities = replace(self.capabilities, logprobs=has_lp, loglikelihood=has_echo)
        await self._probe_sampling([c for c in data if isinstance(c, dict)],
                                   {**body, "echo": True} if echo else body)

    async def _probe_sampling(self, choices: list[dict], body: dict) -> None:
        """Record in ``info["sampling_varies"]`` whether two samples at temperature 1 differ (a second request
        when the server ignored n), and warn when they do not: a server that ignores temperature gives every
        sampled strategy n copies of one completion."""
        if len(choices) < 2:
            async with self._session() as s:
                try:
                    choices = choices + (
                        await self._call(s, "POST", self._path, {**body, "n": 1}, _choices))[:1]
                except _GiveUp:
                    return
        try:
            texts = [_choice_text(c, self.endpoint)[0] for c in choices]
        except _Fail:
            return
        self.info["sampling_varies"] = varies = len(set(texts)) > 1
        if not varies:
            log.warning("%s: two samples at temperature 1 were identical (%r): the server may ignore "
                        "temperature, and sampled strategies would vote over copies (transformers serve "
                        "samples only when the model's generation_config.json sets do_sample: true)",
                        self.info["servers"], texts[0])


def _choices(data: Any) -> list[Any]:
    """The ``choices`` list of a response: wrong shape fails for good, an empty list is retried."""
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise _Fail("unexpected response schema: no 'choices' list", False)
    if not data["choices"]:
        raise _Fail("response has an empty 'choices' list", True)
    return sorted(data["choices"], key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)


def _choice_text(choice: Any, endpoint: str) -> tuple[str, tuple[float, ...] | None, tuple[str, ...] | None]:
    """Text, sampled-token log-probabilities and (when the server sent them) the sampled tokens' texts of one
    choice; ``_Fail`` (not retryable) on a wrong shape."""
    if not isinstance(choice, dict):
        raise _Fail("unexpected response schema: a choice is not an object", False)
    lp = choice.get("logprobs") if isinstance(choice.get("logprobs"), dict) else {}
    if endpoint == "chat":
        text = choice["message"].get("content") if isinstance(choice.get("message"), dict) else None
        pairs = [(t.get("token"), t["logprob"]) for t in lp.get("content") or ()]
    else:
        values, toks = lp.get("token_logprobs") or [], lp.get("tokens") or []
        text, pairs = choice.get("text"), list(
            zip(toks if len(toks) == len(values) else [None] * len(values), values))
    if not isinstance(text, str):
        raise _Fail(f"unexpected response schema: choice text is {type(text).__name__}, not a string", False)
    pairs = [(t, float(v)) for t, v in pairs if v is not None]
    pieces = tuple(t for t, _ in pairs) if all(isinstance(t, str) for t, _ in pairs) else None
    return (text, tuple(v for _, v in pairs), pieces) if pairs else (text, None, None)
