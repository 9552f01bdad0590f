"""Golden traces of the foundation strategies on the scripted backend."""

from selfimprove.backends.scripted import ScriptedBackend
from selfimprove.records import Example, Trace
from selfimprove.strategies import get_strategy
from selfimprove.strategies.base import score_traces
from selfimprove.strategies.sample import Greedy
from selfimprove.strategies.self_consistency import SelfConsistency
from selfimprove.tasks.jsonl import JsonlTask


def _task(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text(
        '{"id": "q1", "question": "one", "answer": 1}\n{"id": "q2", "question": "two", "answer": 2}\n')
    task = JsonlTask(data=str(p))
    return task, task.examples("test")


def test_greedy_golden_trace(tmp_path):
    task, examples = _task(tmp_path)
    backend = ScriptedBackend([(r"one", ["1"]), (r"two", ["3"])])
    traces = score_traces(task, examples, Greedy(max_tokens=8).run(backend, task, examples))
    t1, t2 = traces
    assert (t1.final_answer, t1.correct, t2.final_answer, t2.correct) == ("1", True, "3", False)
    assert len(t1.steps) == 1 and t1.steps[0].kind == "generate"
    assert t1.steps[0].prompt == "Question: one\nAnswer:"
    assert t1.prompt_tokens == len("Question: one\nAnswer:") and t1.completion_tokens == 1 and t1.calls == 1
    assert backend.calls[0][1].temperature == 0.0 and backend.calls[0][1].stop == task.stop
    assert Trace.from_json(t1.to_json()) == t1


def test_self_consistency_votes_ties_and_unparseable(tmp_path):
    task, examples = _task(tmp_path)
    backend = ScriptedBackend([
        (r"one", ["5", "1", "???", "1", "5", "1"]),    # 1 wins 3-2; '???' does not vote
        (r"two", ["2", "7", "7", "2", "xx", "yy"]),    # 2-2 tie: the first seen (2) wins
    ])
    sc = SelfConsistency(n=6, temperature=0.7, seed=3)
    t1, t2 = score_traces(task, examples, sc.run(backend, task, examples))
    assert t1.final_answer == "1" and t1.initial_answer == "5" and t1.confidence == 3 / 6
    assert t1.correct is True and t1.initial_correct is False
    assert t1.steps[0].answers == ("5", "1", None, "1", "5", "1")
    assert t1.steps[1].kind == "vote" and t1.steps[1].info == {"winner": "1", "votes": 3, "parsed": 5, "n": 6}
    assert t2.final_answer == "2" and t2.confidence == 2 / 6
    params = backend.calls[0][1]
    assert (params.n, params.temperature, params.seed) == (6, 0.7, 3)
    assert t1.completion_tokens == sum(len(x) for x in ["5", "1", "???", "1", "5", "1"])


def test_sample_golden_trace_and_pool_metrics(tmp_path):
    from selfimprove.metrics.accuracy import pool_metrics
    from selfimprove.strategies.sample import Sample

    task, examples = _task(tmp_path)
    backend = ScriptedBackend([(r"one", ["5", "1", "1", "???"]), (r"two", ["2", "7", "7", "2"])])
    t1, t2 = score_traces(task, examples, Sample(n=4, temperature=0.9, seed=2).run(backend, task, examples))
    # final answer = the first sample's; the pool stays in the one generate step
    assert (t1.final_answer, t1.correct, t2.final_answer, t2.correct) == ("5", False, "2", True)
    assert [s.kind for s in t1.steps] == ["generate"] and t1.steps[0].answers == ("5", "1", "1", None)
    assert t1.info == {"samples": 4} and t1.calls == 1 and t1.confidence is None
    params = backend.calls[0][1]
    assert (params.n, params.temperature, params.seed) == (4, 0.9, 2)
    m = pool_metrics(task, examples, [t1, t2], ks=(1, 4))
    # q1: 2 of 4 right, q2: 2 of 4 right → pass@1 = 1/2; pass@4 = 1; maj@4: q1 '1' wins 2-1, q2 tie → first
    # ('2')
    assert m["pass@1"] == 0.5 and m["pass@4"] == 1.0 and m["maj@4"] == 1.0 and m["n_samples"] == 4


def test_all_unparseable_gives_none_not_zero(tmp_path):
    task, examples = _task(tmp_path)
    backend = ScriptedBackend([(r"", ["??"])])
    t = SelfConsistency(n=3).run(backend, task, examples[:1])[0]
    assert t.final_answer is None and t.confidence == 0.0
    assert score_traces(task, examples[:1], [t])[0].correct is None


def test_failed_request_is_a_recorded_status(tmp_path):
    task, examples = _task(tmp_path)
    backend = ScriptedBackend([(r"one", [ScriptedBackend.FAIL])], default="2")
    t1, t2 = Greedy().run(backend, task, examples)
    assert t1.status == "error" and t1.final_answer is None and t1.steps[0].completions[0].error
    assert t2.status == "ok"


def test_strategy_specs():
    sc = get_strategy("self-consistency:n=4,temperature=0.5")
    assert isinstance(sc, SelfConsistency) and sc.n == 4 and sc.temperature == 0.5
    import pytest

    from selfimprove.errors import UserError
    with pytest.raises(UserError, match="unknown strategy"):
        get_strategy("no-such-strategy")
    with pytest.raises(UserError, match="unknown strategy 'self-consistency' option 'k'"):
        get_strategy("self-consistency:k=3")
    with pytest.raises(UserError, match="cannot read 'many' as int"):
        get_strategy("self-consistency:n=many")
    with pytest.raises(UserError, match="n must be >= 1"):
        get_strategy("sample:n=0")


def test_example_roundtrip():
    e = Example(id="x", question="q", answer="1", meta={"a": [1, 2]})
    assert Example.from_json(e.to_json()) == e
