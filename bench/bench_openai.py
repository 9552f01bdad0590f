"""Benchmark: requests/s of the openai_compat backend vs a raw concurrent httpx client vs sequential calls.

All three drive the same server with the same request bodies (``/v1/completions``, ``max_tokens`` 16, greedy,
logprobs on), side by side in one run, in alternating rounds; the best round of each is kept and the ratios
are printed against the goals: selfimprove / raw concurrent >= 0.9 at the same concurrency, and
selfimprove / sequential >= 8 at concurrency 16. The raw client is the floor of what any client could do: one
``httpx.AsyncClient``, a semaphore, ``json()`` on each body and nothing else; selfimprove also builds records,
normalises log-probabilities and runs its retry layer. Sequential calls use one ``httpx.Client`` on a subset
(``--sequential``) and are compared as requests/s.

Without ``--url`` the fake server of the tests (tests/fake_openai_server.py) is started in its own process, so
that it does not share the client's interpreter lock, with a fixed per-request latency (``--latency``, 20 ms).

    python bench/bench_openai.py [--url http://HOST:PORT/v1 --model NAME] [--requests 512] [--concurrency 16]
                                 [--latency 0.02] [--rounds 5] [--sequential 48]

Not covered: streaming, chat, token throughput of a real model (that is the server's business), n > 1.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def start_fake_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(REPO / "tests" / "fake_openai_server.py"), "--latency",
                             str(latency)],
                            stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit(f"fake server did not start (printed {url!r})")
    return proc, url


def bodies(model: str | None, count: int) -> list[dict]:
    base = {"max_tokens": 16, "temperature": 0.0, "n": 1, "logprobs": 1,
            **({"model": model} if model else {})}
    return [{**base, "prompt": f"Question {i}: what is {i} + {i * 7}?"} for i in range(count)]


def run_selfimprove(url: str, model: str | None, prompts: list[str], concurrency: int) -> float:
    from selfimprove.backends.openai_compat import OpenAICompatBackend
    from selfimprove.records import SamplingParams

    backend = OpenAICompatBackend(url, model, concurrency=concurrency, probe=False, n_native=True)
    t0 = time.perf_counter()
    out = backend.generate(prompts, SamplingParams(max_tokens=16))
    elapsed = time.perf_counter() - t0
    failed = sum(not c.ok for row in out for c in row)
    if failed:
        raise SystemExit(f"selfimprove: {failed} failed requests; the benchmark needs a healthy server")
    return elapsed


def run_raw(url: str, payloads: list[dict], concurrency: int) -> float:
    import httpx

    async def main() -> None:
        gate = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        verify = url.startswith("https:")  # like selfimprove: no TLS context to build for plain http
        async with httpx.AsyncClient(limits=limits, timeout=60, verify=verify) as client:
            async def one(body: dict) -> None:
                async with gate:
                    resp = await client.post(url + "/completions", json=body)
                resp.raise_for_status()
                resp.json()["choices"][0]["text"]

            await asyncio.gather(*(one(b) for b in payloads))

    t0 = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - t0


def run_sequential(url: str, payloads: list[dict]) -> float:
    import httpx

    with httpx.Client(timeout=60, verify=url.startswith("https:")) as client:
        t0 = time.perf_counter()
        for body in payloads:
            resp = client.post(url + "/completions", json=body)
            resp.raise_for_status()
            resp.json()["choices"][0]["text"]
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an OpenAI-compatible base URL (default: start the fake server)")
    parser.add_argument("--model", help="model name to send (default: none with the fake server)")
    parser.add_argument("--requests", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.02, help="fake server's seconds per request")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sequential", type=int, default=48, help="requests in the sequential run")
    args = parser.parse_args()

    proc, url = (None, args.url) if args.url else start_fake_server(args.latency)
    try:
        payloads = bodies(args.model, args.requests)
        prompts = [b["prompt"] for b in payloads]
        run_raw(url, payloads[:32], args.concurrency)  # warm-up: imports, connections, server threads
        best = {"selfimprove": float("inf"), "raw": float("inf"), "sequential": float("inf")}
        for _ in range(args.rounds):
            best["raw"] = min(best["raw"], run_raw(url, payloads, args.concurrency) / len(payloads))
            best["selfimprove"] = min(best["selfimprove"],
                                      run_selfimprove(url, args.model, prompts,
                                                      args.concurrency) / len(prompts))
            seq = payloads[: args.sequential]
            best["sequential"] = min(best["sequential"], run_sequential(url, seq) / len(seq))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()

    rate = {k: 1.0 / v for k, v in best.items()}
    where = f"fake server, {args.latency * 1000:.0f} ms/request" if proc is not None else url
    print(f"server: {where} · {args.requests} requests · concurrency {args.concurrency} · "
          f"best of {args.rounds}")
    labels = {"selfimprove": "selfimprove openai_compat", "raw": "raw httpx (concurrent)",
              "sequential": "sequential httpx"}
    for name in ("selfimprove", "raw", "sequential"):
        label = labels[name]
        print(f"  {label:28s} {rate[name]:8.1f} req/s")
    vs_raw, vs_seq = rate["selfimprove"] / rate["raw"], rate["selfimprove"] / rate["sequential"]
    print(
        f"selfimprove / raw concurrent : {vs_raw:5.2f}x  (goal >= 0.9)  "
        f"{'ok' if vs_raw >= 0.9 else 'BELOW GOAL'}")
    print(f"selfimprove / sequential     : {vs_seq:5.2f}x  (goal >= 8 at concurrency 16)  "
          f"{'ok' if vs_seq >= 8 else 'BELOW GOAL'}")


if __name__ == "__main__":
    main()
