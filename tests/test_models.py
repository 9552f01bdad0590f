"""Training defaults by model kind: the built-in character models keep the config's defaults, real models get
LoRA-sized ones (without loading any weights)."""

from __future__ import annotations

import json

from selfimprove.models import REAL_MODEL_FULL, REAL_MODEL_TRAINING, is_character_model, training_defaults
from selfimprove.training.config import LoopConfig, nest


def test_character_models_keep_the_config_defaults(tiny_random_model_dir):
    assert is_character_model(tiny_random_model_dir)
    assert training_defaults(tiny_random_model_dir, lora=True) == {}


def test_real_models_get_real_model_defaults(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 49152}))
    assert not is_character_model(tmp_path) and not is_character_model(tmp_path / "missing")
    lora, full = training_defaults(tmp_path, lora=True), training_defaults(tmp_path, lora=False)
    assert lora == REAL_MODEL_TRAINING and full == REAL_MODEL_FULL and full["lr"] < lora["lr"]
    assert training_defaults("smollm2", lora=True) == REAL_MODEL_TRAINING  # by name, before conversion
    assert training_defaults("tiny", lora=True) == {}
    # they go through the run config's flat names, and a recipe's nested table still wins over them
    base = LoopConfig()
    cfg = LoopConfig.from_dict(nest({**lora, "method": "star"}))
    assert (cfg.sft.lr, cfg.max_tokens, cfg.sft.batch_size, cfg.dpo.lr) == (1e-4, 256, 8, 5e-6)
    assert (cfg.sft.lr, cfg.max_tokens, cfg.sft.batch_size) != (base.sft.lr, base.max_tokens,
                                                                base.sft.batch_size)
    assert LoopConfig.from_dict(nest({**lora, "sft": {"lr": 3e-4}})).sft.lr == 3e-4


def test_word_problems_are_deterministic_disjoint_and_solved_by_their_solutions():
    import pytest

    from selfimprove.chat import messages
    from selfimprove.errors import UserError
    from selfimprove.tasks import get_task

    task = get_task("word-problems")
    splits = {s: task.examples(s) for s in ("train", "dev", "test")}
    assert [len(v) for v in splits.values()] == [1000, 200, 400]
    questions = [{e.question for e in v} for v in splits.values()]
    assert not (questions[0] & questions[1] or questions[0] & questions[2] or questions[1] & questions[2])
    assert [e.question for e in get_task("word-problems").examples("dev")] == [e.question
                                                                               for e in splits["dev"]]
    assert all(task.check(e, task.extract(task.solution(e))) for v in splits.values() for e in v)
    ex = splits["test"][0]
    assert ([m["role"] for m in messages(task.prompt(ex))] == ["system", "user"]
            and ex.answer not in ex.question)
    sub = get_task("word-problems:ops=add|sub,max_value=20").examples("dev")
    assert all(("finds" in e.question or "gave" in e.question) and int(e.answer) <= 40 for e in sub)
    with pytest.raises(UserError):
        get_task("word-problems:ops=pow")


def test_word_problems_shots_take_each_operation_in_turn_from_train():
    import pytest

    from selfimprove.chat import messages
    from selfimprove.errors import UserError
    from selfimprove.tasks import get_task

    task = get_task("word-problems:shots=4")
    ex = task.examples("test")[0]
    msgs = messages(task.prompt(ex))
    assert [m["role"] for m in msgs] == ["system"] + ["user", "assistant"] * 4 + ["user"]
    assert msgs[-1]["content"] == ex.question and msgs[0] == messages(get_task("word-problems").prompt(ex))[0]
    train = {e.question: e for e in task.examples("train")}
    shots = [(msgs[i]["content"], msgs[i + 1]["content"]) for i in range(1, 9, 2)]
    assert all(q in train and a == task.solution(train[q]) for q, a in shots)  # train only, worked answers
    assert [next(op for op in "+-x/" if f" {op} " in a) for _, a in shots] == list("+-x/")
    assert task.describe().endswith(",shots=4") and "shots" not in get_task("word-problems").describe()
    with pytest.raises(UserError):
        get_task("word-problems:shots=-1")
