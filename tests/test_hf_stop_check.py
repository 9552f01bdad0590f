"""The hf backend's stop-string fast path (no decode for a token that cannot end a stop string) changes speed,
never output: the same completions as checking every token."""

from __future__ import annotations

from selfimprove.backends.hf import HFBackend
from selfimprove.records import SamplingParams


def test_fast_stop_check_gives_the_same_completions(tiny_random_model_dir):
    backend = HFBackend(str(tiny_random_model_dir))
    prompts = ["a12 b34:", "c5 d6 e7:", "x9:"]
    for stop in (("\n",), ("1", "=2"), ("a ",)):  # one char, a two-char string, one ending in a space
        params = SamplingParams(n=3, temperature=1.0, max_tokens=24, stop=stop, seed=3)
        fast = backend.generate(prompts, params)
        checked = backend._may_end_stop
        backend._may_end_stop = lambda tok, stops: True  # the exact check on every token
        try:
            slow = backend.generate(prompts, params)
        finally:
            backend._may_end_stop = checked
        assert [[c.to_dict() for c in row] for row in fast] == [[c.to_dict() for c in row] for row in slow]
        assert any(c.finish_reason == "stop" for row in fast for c in row), stop  # the stops were exercised
    ends = backend._stop_ends[("\n",)]
    assert backend.tokenizer.convert_tokens_to_ids("\n") in ends or any(
        "\n" in backend.tokenizer.decode([i]) for i in ends)
    assert len(ends) < len(backend.tokenizer)  # the fast path skips most tokens
