"""The built-in real model ``smollm2`` (SmolLM2-135M-Instruct) through the real paths: fingerprint on its
28M-element embedding, the chat template, greedy decoding against ``model.generate``, a LoRA step and eval of
a saved round model. A handful of examples each.

The conversion (about a minute) happens once per machine, in the user's selfimprove home as
``--model smollm2`` would do it (set ``SELFIMPROVE_HOME`` to put it elsewhere); the tests share one loaded
copy.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.slow

QUESTIONS = ["Tom has 3 apples and buys 4 more. How many apples does he have?",
             "What is 12 + 30?", "A box holds 6 eggs. How many eggs are in 2 boxes?"]


@pytest.fixture(scope="module")
def backend(smollm2_dir):
    from selfimprove.backends.hf import HFBackend

    torch.set_num_threads(2)
    return HFBackend(str(smollm2_dir))


def test_resolves_by_name_and_converts_once(smollm2_dir):
    from selfimprove.files import MODEL_METADATA as _META
    from selfimprove.tiny.models import resolve_model

    stamp = (smollm2_dir / _META).stat().st_mtime_ns
    assert resolve_model("smollm2", home_dir=smollm2_dir.parent.parent) == str(smollm2_dir)
    assert (smollm2_dir / _META).stat().st_mtime_ns == stamp  # cached, not converted again


def test_fingerprint_on_the_28m_element_embedding(backend):
    from selfimprove.backends.hf import _strided

    emb = backend.model.get_input_embeddings().weight
    assert emb.numel() > 2**24  # where a float32 linspace rounds the last index out of bounds
    idx = _strided(emb.numel(), 64, "cpu")
    assert idx[0] == 0 and idx[-1] == emb.numel() - 1 and len(set(idx.tolist())) == 64
    before = backend.fingerprint()
    assert before == backend.fingerprint()
    flat = emb.view(-1)  # through the Parameter, so the write bumps its version (``.data`` would not)
    last = flat[-1].item()
    with torch.no_grad():
        flat[-1] = last + 1.0  # the last element is sampled: the fingerprint must see it
    try:
        assert backend.fingerprint() != before
    finally:
        with torch.no_grad():
            flat[-1] = last
    assert backend.fingerprint() == before


def test_chat_template_is_applied_by_default(backend, smollm2_dir):
    from selfimprove.backends.hf import HFBackend
    from selfimprove.chat import few_shot

    assert backend.capabilities.chat_template
    text = backend.render_prompt(few_shot("Be brief.", [], "Hi"))
    assert (text
            == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
               "<|im_start|>assistant\n")
    off = HFBackend.from_model(backend.model, backend.tokenizer, chat=False)
    assert not off.capabilities.chat_template and off.render_prompt(few_shot("Be brief.", [], "Hi")) == \
        "Be brief.\n\nHi"
    assert off.fingerprint() != backend.fingerprint()  # the cache never mixes the two formats


def test_greedy_equals_model_generate(backend):
    from selfimprove.records import SamplingParams

    ours = backend.generate(QUESTIONS, SamplingParams(max_tokens=24))
    tok, model = backend.tokenizer, backend.model
    for question, row in zip(QUESTIONS, ours):
        ids = torch.tensor([backend.encode_prompt(question)])
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        new = [t for t in out[0, ids.shape[1]:].tolist() if t not in backend._eos]
        assert row[0].text == tok.decode(new, skip_special_tokens=True)
        assert row[0].text.strip()  # an instruct model under its template answers (no empty completions)


def test_one_lora_step_changes_weights_and_a_saved_round_evaluates(smollm2_dir, tmp_path, capsys):
    from selfimprove.cli.main import main
    from selfimprove.store.runs import RunStore
    from selfimprove.training.sft import SFTSettings, load_policy, train_sft

    rows = [{"prompt": q, "completion": a} for q, a in zip(QUESTIONS[:2], ["He has 7 apples.\n#### 7",
                                                                         "12 + 30 = 42\n#### 42"])]
    model, tok = load_policy(smollm2_dir)
    before = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    trained, result = train_sft(model, tok, rows, SFTSettings(lora=True, lr=1e-3, batch_size=2, max_steps=1,
                                                              max_length=128),
                                save_to=tmp_path / "round-1")
    after = trained.model.layers[0].self_attn.q_proj.weight.detach()
    assert result.steps == 1 and result.losses and (after - before).abs().max() > 0  # LoRA merged into q_proj
    data = tmp_path / "gsm8k.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": f"#### {a}"}) + "\n"
                            for q, a in zip(QUESTIONS[:2], (7, 42))))
    code = main(["eval", "--model", str(tmp_path / "round-1"), "--task", "gsm8k", "--data", str(data),
                 "--strategy", "greedy:max_tokens=48", "--store", str(tmp_path / "runs.db")])
    assert code == 0
    store = RunStore(tmp_path / "runs.db")
    run = store.get_run(store.list_runs()[0]["id"])
    assert run["status"] == "done" and run["config"]["chat_template"] is True
    traces = store.traces(run["id"])
    assert len(traces) == 2 and all(t.steps[0].completions[0].ok for t in traces)
