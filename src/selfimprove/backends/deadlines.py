"""Connection settings of an OpenAI-compatible server: deadlines, retry counts and URL credentials.

The user sets deadlines and retry counts per model spec or by environment.

A model spec takes them as trailing ``key=value`` parts: ``openai:http://host:8000/v1,timeout=30,retries=2``
(``openai:URL[,URL2...][@MODEL][,key=value...]``). Where the spec is silent, environment variables apply;
where both are silent, ``RetryPolicy``'s defaults. Keys, with their environment variables:

- ``timeout`` (``SELFIMPROVE_TIMEOUT``): seconds per attempt to connect and between bytes of the answer (sets
  both of the next two; a stalled server fails the attempt after this long);
- ``connect_timeout`` (``SELFIMPROVE_CONNECT_TIMEOUT``), ``read_timeout`` (``SELFIMPROVE_READ_TIMEOUT``);
- ``total_timeout`` (``SELFIMPROVE_TOTAL_TIMEOUT``): seconds for one request, every attempt and backoff sleep
  included;
- ``retries`` (``SELFIMPROVE_RETRIES``): attempts after the first (``max_attempts = retries + 1``).

A stalled request therefore ends within about ``timeout x (retries + 1)`` plus the backoff sleeps, and never
after ``total_timeout``; it is then a failed completion (``finish_reason='error'``), not an answer. The
start-up capability probe runs under the same deadlines (with at most two attempts).

Credentials in a URL (``http://user:secret@host/v1``) are taken out of it (``strip_credentials``) and sent as
HTTP basic auth, so that no URL the client logs, records or shows carries them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import replace

from ..errors import UserError

OPTIONS = {"timeout": "SELFIMPROVE_TIMEOUT", "connect_timeout": "SELFIMPROVE_CONNECT_TIMEOUT",
           "read_timeout": "SELFIMPROVE_READ_TIMEOUT", "total_timeout": "SELFIMPROVE_TOTAL_TIMEOUT",
           "retries": "SELFIMPROVE_RETRIES"}
"""Spec key -> environment variable."""

_OPTION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=(.*)$")


def strip_credentials(urls: list[str]) -> tuple[list[str], dict]:
    """The URLs without their ``user:password@``, and ``{url: httpx.BasicAuth}`` for those that had it."""
    from urllib.parse import unquote, urlsplit, urlunsplit

    import httpx

    clean, auth = [], {}
    for url in urls:
        parts = urlsplit(url)
        if "@" in parts.netloc:
            userinfo, _, host = parts.netloc.rpartition("@")
            user, _, password = userinfo.partition(":")
            url = urlunsplit(parts._replace(netloc=host))
            auth[url] = httpx.BasicAuth(unquote(user), unquote(password))
        clean.append(url)
    return clean, auth


def spec_deadlines(rest: str, base):
    """``(URL part of the spec, policy)`` from a spec without its ``openai:`` prefix."""
    parts, options = split_options(rest.split(","))
    return ",".join(parts), retry_policy(base, options)


def split_options(parts: list[str]) -> tuple[list[str], dict[str, str]]:
    """Separate ``key=value`` parts (no ``://``) from the URL parts of a comma-split spec."""
    urls, options = [], {}
    for part in parts:
        m = _OPTION.match(part) if "://" not in part else None
        if m:
            key = m.group(1).replace("-", "_")
            if key not in OPTIONS:
                raise UserError(f"unknown option '{key}' in the model spec; known: {', '.join(OPTIONS)}",
                                field="model")
            options[key] = m.group(2).strip()
        else:
            urls.append(part)
    return urls, options


def retry_policy(base, options: Mapping[str, str], environ: Mapping[str, str] | None = None):
    """``base`` (a ``RetryPolicy``) with the spec's options, else the environment's, applied."""
    environ = os.environ if environ is None else environ
    values: dict[str, float] = {}
    for key, env in OPTIONS.items():
        raw, where = (options[key], f"model spec option '{key}'") if key in options else (
            environ.get(env), f"environment variable {env}")
        if raw is None or raw == "":
            continue
        values[key] = _number(raw, where, integer=key == "retries")
    changes: dict[str, float] = {}
    if "timeout" in values:
        changes.update(connect_timeout=values["timeout"], read_timeout=values["timeout"])
    for key in ("connect_timeout", "read_timeout", "total_timeout"):
        if key in values:
            changes[key] = values[key]
    if "retries" in values:
        changes["max_attempts"] = int(values["retries"]) + 1
    return replace(base, **changes) if changes else base


def _number(raw: str, where: str, integer: bool) -> float:
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise UserError(
            f"{where}: cannot read {raw!r} as {'an integer' if integer else 'a number'}") from None
    if integer and value < 0:
        raise UserError(f"{where}: must be an integer >= 0, got {raw!r}")
    if not integer and not (math.isfinite(value) and value > 0):
        raise UserError(f"{where}: must be a finite number of seconds > 0, got {raw!r}")
    return value
