"""``selfimprove train --model SPEC:chat=false``: the hf backend's options in the model spec, written as
``eval`` takes them, reach every round's generation and evaluation and the trainers' row formatting, are
stored with the run, and are read back on ``--resume``."""

from __future__ import annotations

import json

import pytest
from conftest import make_random_llama

from selfimprove.cli.main import main

TEMPLATE = ("{% for m in messages %}{{ m['role'][0] }}: {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}a:{% endif %}")
SMALL = ["--task", "arithmetic:n_train=8,n_dev=3,n_test=3", "--method", "no-filter", "--rounds", "1",
         "--n", "1", "--train-limit", "4", "--eval-limit", "3", "--max-tokens", "12", "--max-steps", "1",
         "--batch-size", "4"]


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    """The tiny random Llama with a chat template (the tests only need the template to change the prompt)."""
    from transformers import AutoTokenizer

    path = make_random_llama(tmp_path_factory.mktemp("chat-model") / "model")
    tok = AutoTokenizer.from_pretrained(path)
    tok.chat_template = TEMPLATE
    tok.save_pretrained(path)
    return path


def _sent_prompts(run, r: int) -> list:
    lines = (run / f"round-{r}" / "eval-dev.jsonl").read_text().splitlines()
    return [json.loads(line)["steps"][0]["info"].get("sent_prompt") for line in lines]


@pytest.mark.slow
@pytest.mark.parametrize("suffix, chat", [("", True), (":chat=false", False)])
def test_backend_options_reach_generation_training_and_resume(suffix, chat, chat_model_dir, tmp_path,
                                                             monkeypatch):
    from selfimprove.chat import model_text
    from selfimprove.training import sft

    formatted = []
    real_train_sft = sft.train_sft

    def spy(model, tok, rows, settings, save_to=None, chat=True):
        formatted.extend(model_text(tok, r["prompt"], chat) for r in rows)
        return real_train_sft(model, tok, rows, settings, save_to=save_to, chat=chat)

    monkeypatch.setattr(sft, "train_sft", spy)
    run, db = tmp_path / "run", str(tmp_path / "runs.db")
    assert main(
        ["train", "--model", f"{chat_model_dir}{suffix}", *SMALL, "--out", str(run), "--store", db]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["backend_options"] == ({} if chat else {"chat": False})
    assert config["model_path"] == str(chat_model_dir)  # the options are not part of the path
    for r in (0, 1):  # the template's text is what the model received, or plain text with chat=false
        sent = _sent_prompts(run, r)
        assert len(sent) == 3 and all((s is not None and s.endswith("a:")) == chat for s in sent)
    # rows as generation sees them
    assert formatted and all(text.endswith("a:") == chat for text in formatted)

    # resume after round 1's training: its evaluation runs again, with the stored options
    (run / "state.json").write_text(json.dumps({"round": 1, "phase": "train"}))
    for f in (run / "round-1").glob("eval-*.jsonl"):
        f.unlink()
    (run / "round-1" / "metrics.json").unlink()
    assert main(["train", "--resume", str(run), "--store", db]) == 0
    assert all((s is not None) == chat for s in _sent_prompts(run, 1))


def test_an_unknown_model_option_is_refused_before_anything_runs(chat_model_dir, tmp_path, capsys):
    code = main(["train", "--model", f"{chat_model_dir}:chat=false,temp=1", *SMALL, "--out",
                 str(tmp_path / "r"),
                 "--store", str(tmp_path / "runs.db")])
    err = capsys.readouterr().err
    assert code == 2 and "unknown model option(s) ['temp']" in err and "chat" in err
    assert not (tmp_path / "r" / "config.json").exists()
