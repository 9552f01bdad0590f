"""The Method contract: a new training method is one class and one registration line, and runs through the one
round loop and the CLI like the built-in ones; the registry describes every method the same way."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pytest

from selfimprove.records import Example, SamplingParams, Trace
from selfimprove.registry import unregister
from selfimprove.strategies.base import score_traces
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.training import LoopConfig, run_loop
from selfimprove.training.data import SFTRow
from selfimprove.training.method import Built, Method, sample, sft_report
from selfimprove.training.methods import get_method, method_classes, register_method


# ---- a whole training method, as a newcomer would write it -------------------------------------------------
@dataclass(frozen=True)
class ShortestParsed(Method):
    """Train on the shortest sample whose answer parses (no gold, no vote): a toy rule for the contract
    test."""

    name = "shortest-parsed"
    objective = "sft"

    min_chars: int = 1
    """Ignore samples shorter than this."""

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        from selfimprove.strategies.base import make_trace

        steps = sample(backend, loop.task, examples, loop.cfg, r)
        return score_traces(loop.task, examples, [
            make_trace(e, self.name, [s], initial_answer=s.answers[0], final_answer=s.answers[0])
            for e, s in zip(examples, steps)])

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        rows = []
        for t in traces:
            step = t.steps[0]
            ok = [(len(c.text), c.text, a) for c, a in zip(step.completions, step.answers)
                  if a is not None and len(c.text) >= self.min_chars]
            if ok:
                _, text, answer = min(ok)
                rows.append(SFTRow(step.prompt, text, t.example_id, "shortest", answer, r))
        return Built(rows=rows, stats=sft_report(self, loop.task, examples, traces, rows))


@pytest.fixture
def registered():
    register_method(ShortestParsed)  # the one registration line
    yield ShortestParsed
    unregister("methods", ShortestParsed.name)


def scripted():
    """The library's ``scripted`` model, half its samples wrong (wrong sample i off by i + 1)."""
    from selfimprove.backends.scripted import ScriptedCalculator

    return ScriptedCalculator(error_rate=0.5, seed=11, distinct_errors=True)


def test_a_method_defined_in_a_test_module_runs_through_the_loop(registered, tiny_random_model_dir, tmp_path):
    t = ArithmeticTask(n_train=8, n_dev=4, n_test=4)
    cfg = LoopConfig.from_dict({"method": "shortest-parsed", "min_chars": 2, "rounds": 1, "n": 2,
                                "train_limit": 4, "eval_limit": 2, "max_steps": 1, "batch_size": 4})
    assert isinstance(cfg.method, ShortestParsed) and cfg.method.min_chars == 2
    summary = run_loop(cfg, t, tiny_random_model_dir, tmp_path / "run", make_backend=lambda p: scripted(),
                       log=lambda m: None)
    assert summary["method"] == "shortest-parsed" and summary["rounds_done"] == 1
    rows = [json.loads(x) for x in (tmp_path / "run/round-1/rows.jsonl").read_text().splitlines()]
    train = t.examples("train")[:4]
    params = SamplingParams(n=2, temperature=cfg.temperature, max_tokens=cfg.max_tokens)
    samples = [[c.text for c in scripted().generate([t.prompt(e)], params)[0]] for e in train]
    assert any(a != b for a, b in samples)  # the rule has a choice to make
    # the method's rule on the double's samples: the shortest, ties broken by the text
    want = [(e.id, min(texts, key=lambda x: (len(x), x))) for e, texts in zip(train, samples)]
    assert [(r["example_id"], r["completion"]) for r in rows] == want
    info = json.loads((tmp_path / "run/round-1/train.json").read_text())
    assert info["objective"] == "sft" and info["rows"] == 4 and info["steps"] == 1


def test_a_registered_method_is_a_cli_choice_with_generated_flags(registered, tiny_random_model_dir, tmp_path,
                                                                  capsys):
    from selfimprove.cli.main import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert ("shortest-parsed" in out and "--min-chars INT" in out
            and "Ignore samples shorter than this." in out)
    code = main(["train", "--model", str(tiny_random_model_dir), "--task",
                 "arithmetic:n_train=8,n_dev=4,n_test=4",
                 "--method", "shortest-parsed", "--min-chars", "3", "--rounds", "1", "--n", "2",
                 "--train-limit",
                 "2", "--eval-limit", "2", "--max-tokens", "8", "--max-steps", "1", "--out",
                 str(tmp_path / "run"),
                 "--store", str(tmp_path / "runs.db")])
    assert code == 0
    saved = json.loads((tmp_path / "run/config.json").read_text())["loop"]
    assert saved["method"] == {"name": "shortest-parsed", "min_chars": 3}


def test_the_registry_refuses_a_second_method_of_the_same_name_and_non_methods(registered):
    @dataclass(frozen=True)
    class Other(Method):
        name = "shortest-parsed"

    with pytest.raises(ValueError, match="already registered"):
        register_method(Other)
    with pytest.raises(ValueError, match="Method subclass"):
        register_method(dict)
    with pytest.raises(ValueError, match="unknown method"):
        get_method("nope")


@pytest.mark.parametrize("name", ["star", "rest-em", "lmsi", "easy-to-hard", "no-filter", "self-rewarding",
                                  "scpo",
                                  "spin", "gold-dpo", "v-star", "cct"])
def test_every_built_in_method_declares_the_contract(name):
    """Each is a frozen dataclass with its paper in its module docstring (title and arXiv id, or the control's
    reason), a documented default for every setting, and the class-level facts the loop reads."""
    import sys

    from selfimprove.registry import field_docs

    cls = method_classes()[name]
    assert cls.name == name and cls.objective in ("sft", "dpo") and isinstance(cls.reads_gold, bool)
    doc = sys.modules[cls.__module__].__doc__
    assert "arXiv:" in doc or name == "no-filter", doc
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        assert f.default is not dataclasses.MISSING and docs.get(f.name), (
            f"{name}.{f.name} needs a default and doc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        (cls() if name != "easy-to-hard" else cls(difficulty_splits=("x",))).name = "x"
