"""A small scriptable OpenAI-compatible server on loopback, for fault tests and the benchmark.

``FakeOpenAIServer`` is a real HTTP server (stdlib ``ThreadingHTTPServer``) on 127.0.0.1, on a free port, in a
background thread. Each POST to ``/v1/completions`` or ``/v1/chat/completions`` takes the next action of its
prompt's script (``by_prompt``: prompt → list of actions) or else of the shared ``script`` list, in arrival
order; when both are used up it answers normally. Actions:

- ``"ok"``: a normal answer with ``n`` choices (one when ``ignore_n`` is set);
- ``503`` (an int) or ``(429, "2")``: that status, with the second item as the Retry-After header;
- ``"reset"``: close the socket without answering (SO_LINGER 0: a connection reset);
- ``("stall", seconds)``: say nothing for that long (a stall past the client's read deadline), then answer;
- ``"truncated"``: a 200 whose JSON body is cut in half;
- ``"schema"``: a 200 with JSON of the wrong shape (no ``choices``); ``"badtext"``: a choice whose text is 42;
  ``"list"``: a 200 whose JSON is a list;
- ``"empty"``: a 200 with ``choices: []``; ``"one"``: a 200 with one choice whatever ``n`` asked;
- ``("finish", reason)``: a normal answer with that finish_reason; ``("text", s)``: a normal answer whose
  every choice's text is ``s`` (``""``: an empty completion); ``"html"``: a 200 with an HTML page (a proxy's
  error);
- ``"echo_auth"``: a 401 whose body repeats the request's Authorization header (a leaky server).

A normal answer's text is ``"<" + prompt[-6:] + ":" + str(i) + ">"`` for choice ``i`` (``seed`` appended when
given), one token per character, each with log-probability -0.5; ``echo`` prepends the prompt (first token's
logprob None) and ``text_offset`` is given. Every request is counted (``attempts``, ``attempts_for(prompt)``)
and its body and Authorization header kept in ``requests``; ``max_active`` is the most requests it held at
once.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default listen backlog (5) resets bursts of concurrent connections


class FakeOpenAIServer:
    def __init__(self, latency: float = 0.0, ignore_n: bool = False, model: str = "fake-model") -> None:
        self.latency, self.ignore_n, self.model = latency, ignore_n, model
        self.script: list[Any] = []
        self.by_prompt: dict[str, list[Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.models_status = 200
        self.active = self.max_active = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> FakeOpenAIServer:
        return self.__enter__()

    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self, script: list[Any] | None = None, by_prompt: dict[str, list[Any]] | None = None,
              ignore_n: bool = False) -> None:
        with self._lock:
            self.script = list(script or [])
            self.by_prompt = {k: list(v) for k, v in (by_prompt or {}).items()}
            self.requests.clear()
            self.ignore_n = ignore_n
            self.models_status = 200
            self.max_active = 0

    @property
    def attempts(self) -> int:
        return len(self.requests)

    def attempts_for(self, prompt: str) -> int:
        return sum(1 for r in self.requests if _prompt_of(r["body"]) == prompt)

    def next_action(self, body: dict) -> Any:
        prompt = _prompt_of(body)
        with self._lock:
            queue = self.by_prompt.get(prompt)
            if queue:
                return queue.pop(0)
            return self.script.pop(0) if self.script and queue is None else "ok"


def _prompt_of(body: dict) -> str:
    if "messages" in body:
        return str(body["messages"][-1].get("content", ""))
    return str(body.get("prompt", ""))


def answer(body: dict, chat: bool, n: int, finish: str = "stop") -> dict:
    """A well-formed completions / chat completions response for ``body``."""
    prompt = _prompt_of(body)
    seed = body.get("seed")
    choices = []
    for i in range(n):
        text = f"<{prompt[-6:]}:{i}>" + (f"s{seed}" if seed is not None else "")
        want_lp = bool(body.get("logprobs"))
        if chat:
            lp = {"content": [{"token": ch, "logprob": -0.5, "top_logprobs": []} for ch in text]}
            choices.append({"index": i, "message": {"role": "assistant", "content": text},
                            "logprobs": lp if want_lp else None, "finish_reason": finish})
            continue
        toks = list(prompt) + list(text) if body.get("echo") else list(text)
        values: list[float | None] = [-0.5] * len(toks)
        if body.get("echo") and toks:
            values[0] = None
        offsets, pos = [], 0
        for t in toks:
            offsets.append(pos)
            pos += len(t)
        lp = {"tokens": toks, "token_logprobs": values, "text_offset": offsets, "top_logprobs": None}
        choices.append({"index": i, "text": (prompt if body.get("echo") else "") + text,
                        "logprobs": lp if want_lp else None, "finish_reason": finish})
    usage = {"prompt_tokens": len(prompt),
             "completion_tokens": sum(len(f"<{prompt[-6:]}:{i}>") for i in range(n)),
             "total_tokens": 0}
    return {"id": "fake", "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"), "choices": choices, "usage": usage}


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: Nagle + delayed ACK would add 40 ms

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Length", str(len(payload)))
                for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (stall past its deadline)
                self.close_connection = True

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                data = {"object": "list", "data": [{"id": server.model, "object": "model"}]}
                self._send(server.models_status, json.dumps(data).encode())
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw)
            except ValueError:
                return self._send(400, b'{"error": "bad json"}')
            chat = self.path.rstrip("/").endswith("/chat/completions")
            if not chat and not self.path.rstrip("/").endswith("/completions"):
                return self._send(404, b'{"error": "not found"}')
            with server._lock:
                server.requests.append({"path": self.path, "body": body, "time": time.monotonic(),
                                        "authorization": self.headers.get("Authorization")})
                server.active += 1
                server.max_active = max(server.max_active, server.active)
            try:
                action = server.next_action(body)
                if server.latency:
                    time.sleep(server.latency)
                self._act(action, body, chat)
            finally:
                with server._lock:
                    server.active -= 1

        def _act(self, action: Any, body: dict, chat: bool) -> None:
            n = int(body.get("n") or 1)
            if isinstance(action, int):
                return self._send(action, json.dumps({"error": {"message": f"status {action}"}}).encode())
            if isinstance(action, tuple) and isinstance(action[0], int):
                return self._send(action[0], b'{"error": "busy"}', {"Retry-After": action[1]})
            if action == "echo_auth":
                leak = json.dumps({"error": f"bad key: {self.headers.get('Authorization')}"}).encode()
                return self._send(401, leak)
            if action == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return None
            if isinstance(action, tuple) and action[0] == "stall":
                if server._stop.wait(action[1]):
                    return None
                action = "ok"
            if action == "truncated":
                full = json.dumps(answer(body, chat, n)).encode()
                return self._send(200, full[: len(full) // 2])
            if action == "html":
                return self._send(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                                  {"Content-Type": "text/html"})
            if action in ("schema", "list", "badtext", "empty"):
                data: Any = {"schema": {"schema": {"foo": 1}}, "list": [1, 2, 3]}.get(action)
                if data is None:
                    data = answer(body, chat, n)
                    data["choices"] = [] if action == "empty" else [{"index": 0, "text": 42, "message": 42}]
                return self._send(200, json.dumps(data).encode())
            finish = action[1] if isinstance(action, tuple) and action[0] == "finish" else "stop"
            count = 1 if (server.ignore_n or action == "one") else n
            data = answer(body, chat, count, finish)
            if isinstance(action, tuple) and action[0] == "text":
                for c in data["choices"]:
                    c.update(text=action[1], logprobs=None,
                             message={"role": "assistant", "content": action[1]})
            return self._send(200, json.dumps(data).encode())

    return Handler


def main() -> None:
    """``python tests/fake_openai_server.py --latency 0.02``: serve until killed; the first line printed is
    the URL."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each answer waits")
    parser.add_argument("--ignore-n", action="store_true", help="answer one choice whatever n asks")
    args = parser.parse_args()
    with FakeOpenAIServer(latency=args.latency, ignore_n=args.ignore_n) as srv:
        print(srv.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
