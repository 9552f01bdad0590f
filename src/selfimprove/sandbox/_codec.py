"""Plain-data codec and length-prefixed frames shared by the sandbox's processes (stdlib only).

Values crossing from the candidate process to the test process are encoded as tagged JSON and decoded into
*exact builtin types* only (None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset).
Whatever bytes the candidate writes, the test process ends up holding ordinary data, so an object whose
``__eq__`` always returns True, or a subclass of ``int`` with a rigged comparison, cannot cross the boundary.
"""

from __future__ import annotations

import json
import os
import struct

MAX_FRAME = 16 * 1024 * 1024
"""Largest frame any sandbox process accepts; a bigger length prefix is a protocol error."""


class ProtocolError(Exception):
    """A frame or value that does not follow the protocol (treated as a failure, never as a pass)."""


def encode(value, depth: int = 0):
    """Tagged JSON-ready form of a plain value; anything else raises TypeError."""
    if depth > 200:
        raise TypeError("value nested deeper than 200 levels")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return {"i": str(value)}
    if t is float:
        return {"f": repr(value)}
    if t is complex:
        return {"c": [repr(value.real), repr(value.imag)]}
    if t is bytes:
        return {"b": value.hex()}
    if t is list:
        return {"l": [encode(v, depth + 1) for v in value]}
    if t is tuple:
        return {"t": [encode(v, depth + 1) for v in value]}
    if t is set or t is frozenset:
        return {"s" if t is set else "fs": [encode(v, depth + 1) for v in value]}
    if t is dict:
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    raise TypeError(f"cannot pass a value of type {t.__name__} between sandbox processes")


def _float(text) -> float:
    if type(text) is not str or len(text) > 40:
        raise ProtocolError("bad float")
    return float(text)


def decode(obj, depth: int = 0):
    """Inverse of ``encode``; accepts only well-formed tagged data and returns exact builtin types."""
    if depth > 200:
        raise ProtocolError("value nested deeper than 200 levels")
    if obj is None or type(obj) is bool or type(obj) is str:
        return obj
    if type(obj) is not dict or len(obj) != 1:
        raise ProtocolError(f"unexpected {type(obj).__name__} in value")
    (tag, v), = obj.items()
    if tag == "i":
        if type(v) is not str or len(v) > 5000:
            raise ProtocolError("bad int")
        return int(v)
    if tag == "f":
        return _float(v)
    if tag == "c":
        if type(v) is not list or len(v) != 2:
            raise ProtocolError("bad complex")
        return complex(_float(v[0]), _float(v[1]))
    if tag == "b":
        if type(v) is not str:
            raise ProtocolError("bad bytes")
        return bytes.fromhex(v)
    if type(v) is not list:
        raise ProtocolError(f"bad container for tag {tag!r}")
    if tag == "l":
        return [decode(x, depth + 1) for x in v]
    if tag == "t":
        return tuple(decode(x, depth + 1) for x in v)
    if tag == "s":
        return {decode(x, depth + 1) for x in v}
    if tag == "fs":
        return frozenset(decode(x, depth + 1) for x in v)
    if tag == "d":
        out = {}
        for pair in v:
            if type(pair) is not list or len(pair) != 2:
                raise ProtocolError("bad dict item")
            out[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
        return out
    raise ProtocolError(f"unknown tag {tag!r}")


def write_frame(fd: int, obj) -> None:
    """Write one length-prefixed JSON frame to a raw file descriptor."""
    data = json.dumps(obj).encode()
    if len(data) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(data)} bytes exceeds {MAX_FRAME}")
    buf = struct.pack(">I", len(data)) + data
    view = memoryview(buf)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_exact(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int):
    """Read one frame written by ``write_frame``; EOFError when the peer is gone."""
    (n,) = struct.unpack(">I", read_exact(fd, 4))
    if n > MAX_FRAME:
        raise ProtocolError(f"frame length {n} exceeds {MAX_FRAME}")
    try:
        return json.loads(read_exact(fd, n))
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"unreadable frame: {type(e).__name__}") from None
