"""The arithmetic task: deterministic disjoint splits, the format, extraction, checking, options."""

from __future__ import annotations

import random

import pytest

from selfimprove.errors import UserError
from selfimprove.records import Example
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.tasks.base import Task
from selfimprove.tiny.data import perturb


@pytest.fixture(scope="module")
def task():
    return ArithmeticTask(terms=(2, 4), digits=(1, 2), n_train=300, n_dev=50, n_test=100)


def test_implements_the_task_protocol(task):
    assert isinstance(task, Task)
    assert task.stop == ("\n",)


def test_splits_are_deterministic_and_seeded(task):
    again = ArithmeticTask(terms=(2, 4), digits=(1, 2), n_train=300, n_dev=50, n_test=100)
    assert [e.to_dict() for e in task.examples("test")] == [e.to_dict() for e in again.examples("test")]
    other = ArithmeticTask(terms=(2, 4), digits=(1, 2), seed=1, n_test=100)
    assert [e.question for e in other.examples("test")] != [e.question for e in task.examples("test")]


def test_splits_are_disjoint_and_sized(task):
    keys = {s: {tuple(e.meta["operands"]) for e in task.examples(s)} for s in ("train", "dev", "test")}
    assert len(keys["train"]) == 300 and len(keys["dev"]) == 50 and len(keys["test"]) == 100
    assert (not keys["train"] & keys["dev"] and not keys["train"] & keys["test"]
            and not keys["dev"] & keys["test"])
    ids = [e.id for e in task.examples("train")]
    assert len(set(ids)) == len(ids)


def test_difficulty_splits(task):
    assert {e.meta["terms"] for e in task.examples("test")} == {2, 3, 4}
    assert {e.meta["terms"] for e in task.examples("test-hard")} == {5}
    assert {e.meta["terms"] for e in task.examples("terms=6")} == {6}
    assert {e.meta["digits"] for e in task.examples("digits=1")} == {1}
    with pytest.raises(UserError, match="wider than width"):
        task.examples("terms=20")
    with pytest.raises(UserError, match="unknown split"):
        task.examples("validation")


def test_gold_answer_is_the_sum_and_the_solution_reaches_it(task):
    for e in task.examples("dev"):
        assert int(e.answer) == sum(e.meta["operands"])
        assert e.question == "+".join(map(str, e.meta["operands"]))
        order = list(reversed(range(e.meta["terms"])))
        assert task.extract(task.solution(e)) == e.answer
        assert task.extract(task.solution(e, order)) == e.answer


def test_format_by_hand():
    t = ArithmeticTask(terms=(2, 4), digits=(1, 3))  # width 4: sums up to 6 * 999
    e = Example(id="x", question="12+345+6+78", answer="441",
                meta={"operands": [12, 345, 6, 78], "labels": "akcx", "terms": 4})
    assert t.width == 4
    assert t.prompt(e) == "a2100 k5430 c6000 x8700:"
    assert t.solution(e, [2, 0, 3, 1]) == " c6000=6000 a2100=8100 x8700=6900 k5430=1440 #1440"
    assert t.solution(e).startswith(" a2100=2100 k5430=7530 ")
    assert t.render(t.problem(e), "cakx") == t.solution(e, [2, 0, 1, 3])
    assert t.verify_prompt(e, " c6000=6000 #6000\n") == "a2100 k5430 c6000 x8700: c6000=6000 #6000 ?"
    assert t.correct_prompt(e, "c6000=6000  #6000") == "a2100 k5430 c6000 x8700: c6000=6000 #6000 !"
    assert t.hint_prompt(e) == "a2100 k5430 c6000 x8700 #1440:"


def test_malformed_example_is_a_user_error(task):
    bad = Example(id="q7", question="1+2", answer="3", meta={"operands": [1, 2], "labels": "aa"})
    with pytest.raises(UserError, match="example q7"):
        task.prompt(bad)
    with pytest.raises(UserError, match="meta"):
        task.prompt(Example(id="q8", question="1+2"))


@pytest.mark.parametrize("text, expected", [
    (" c6000=6000 a2100=8100 x8700=6900 k5430=1440 #1440", "441"),
    ("#1440", "441"),
    (" #0000", "0"),
    ("#2100 junk #1440", "441"),      # the last answer counts
    ("", None), (None, None), ("the answer is 441", None), ("#", None), ("#abc", None),
    ("#144", None),                   # wrong width: not a well-formed answer
    ("#14400", None),
])
def test_extract(text, expected):
    t = ArithmeticTask(terms=(2, 4), digits=(1, 3))
    assert t.extract(text) == expected


def test_check_and_equivalence(task):
    e = task.examples("dev")[0]
    assert task.check(e, e.answer) is True
    assert task.check(e, str(int(e.answer) + 1)) is False
    assert task.check(e, None) is None
    assert task.equivalent("007", "7") and not task.equivalent("7", None)


def test_parse_verdict(task):
    assert task.parse_verdict(" yes") is True
    assert task.parse_verdict("no") is False
    assert task.parse_verdict(" Yes, it is") is True
    assert task.parse_verdict("maybe") is None and task.parse_verdict("") is None
    assert task.verdict_continuations == (" yes", " no")


def test_perturbations_are_always_wrong_and_parseable(task):
    rng = random.Random(0)
    for _ in range(2000):
        p = task.sample_problem(rng)
        order = rng.sample(range(len(p.operands)), len(p.operands))
        answer = task.extract(perturb(task, p, order, rng))
        assert answer is not None and int(answer) != p.total


def test_from_options():
    t = ArithmeticTask.from_options({"op": "add", "terms": "3-6", "digits": "2", "seed": "7", "n_test": "20"})
    assert (t.terms, t.digits, t.seed, len(t.examples("test"))) == ((3, 6), (2, 2), 7, 20)
    assert "terms=3-6" in t.describe()


@pytest.mark.parametrize("options, bad", [
    ({"op": "mul"}, "op"), ({"terms": "5-2"}, "terms"), ({"digits": "x"}, "digits"),
    ({"seed": "one"}, "seed"),
    ({"colour": "red"}, "colour"), ({"width": "2"}, "width"), ({"n_test": "0"}, "n_test"),
    ({"terms": "0-3"}, "terms"),
])
def test_from_options_names_the_bad_option(options, bad):
    with pytest.raises(UserError) as info:
        ArithmeticTask.from_options(options)
    assert info.value.field == bad and bad in str(info.value)


def test_verify_format_2_resolves_and_compares_digit_by_digit():
    t = ArithmeticTask(terms=(2, 2), digits=(1, 1), verify=2)
    e = t.examples("test")[0]
    right = t.solution(e)
    wrong = right[:-1] + ("9" if right[-1] != "9" else "8")
    own, cand = t.encode(int(e.answer)), wrong[-t.width:]
    assert t.verify_prompt(e, wrong) == t.prompt(e)[:-1] + f" #{cand} ?"  # only the candidate's answer
    marks = " ".join(f"{a}{b}{'=' if a == b else 'x'}" for a, b in zip(own, cand))
    assert t.verify_target(e, wrong) == f"{right} #{cand} ; {marks} | no"
    assert t.verify_target(e, right).endswith(" | yes") and "x" not in t.verify_target(e, right).split(";")[1]
    assert t.parse_verdict(t.verify_target(e, wrong)) is False and t.parse_verdict(t.verify_target(e, right))
    assert t.verify_prompt(e, "no answer") == t.prompt(e)[:-1] + " #" + "?" * t.width + " ?"
    assert t.correct_target(e) == right and t.extract(t.correct_target(e)) == e.answer
    assert t.verify_think == "|" and t.describe().endswith(",verify=2")
    assert ArithmeticTask.from_options({"verify": "2"}).verify == 2


def test_verify_format_1_is_unchanged_and_a_bad_version_is_a_user_error():
    t = ArithmeticTask(terms=(2, 2), digits=(1, 1))
    e = t.examples("test")[0]
    right = t.solution(e)
    assert t.verify_prompt(e, right) == t.prompt(e) + right + " ?" and t.verify_think is None
    assert t.verify_target(e, right) == " yes" and t.correct_target(e) == f" #{t.encode(int(e.answer))}"
    with pytest.raises(UserError, match="verify"):
        ArithmeticTask(verify=3)
