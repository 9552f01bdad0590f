"""The hf backend on a random 2-layer Llama with the char tokenizer: shapes, seeds, invariance, stops,
scores."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from selfimprove.backends.base import Backend
from selfimprove.backends.hf import HFBackend, HFConfig
from selfimprove.errors import UserError
from selfimprove.records import SamplingParams

PROMPTS = ["12+34=", "what is 7*8?", "a", "the quick brown fox jumps over"]
SAMPLED = SamplingParams(n=3, temperature=1.0, top_p=0.95, max_tokens=12, seed=7)


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def backend(tiny_random_model_dir) -> HFBackend:
    return HFBackend(str(tiny_random_model_dir))


def _texts(rows):
    return [[c.text for c in row] for row in rows]


def _assert_same(a, b, tol=1e-4):
    assert _texts(a) == _texts(b)
    for row_a, row_b in zip(a, b):
        for ca, cb in zip(row_a, row_b):
            assert ca.finish_reason == cb.finish_reason
            assert ca.token_logprobs == pytest.approx(cb.token_logprobs, abs=tol)


def test_protocol_shape_and_counts(backend):
    assert isinstance(backend, Backend)
    caps = backend.capabilities
    assert (caps.seed, caps.logprobs, caps.loglikelihood, caps.trainable, caps.chat_template) == (
        True, True, True, True, False)
    out = backend.generate(PROMPTS, SamplingParams(n=4, temperature=1.0, max_tokens=6, seed=1))
    assert [len(row) for row in out] == [4] * len(PROMPTS)
    for prompt, row in zip(PROMPTS, out):
        for c in row:
            assert c.prompt_tokens == len(prompt)  # char tokenizer: no BOS added by default
            assert c.completion_tokens == len(c.token_logprobs) >= len(c.text)  # special tokens print as ''
            assert c.logprobs_source == "raw" and all(lp <= 0 for lp in c.token_logprobs)


def test_greedy_is_deterministic_and_same_across_n(backend):
    params = SamplingParams(n=2, max_tokens=10)
    a, b = backend.generate(PROMPTS, params), backend.generate(PROMPTS, params)
    _assert_same(a, b, tol=0)
    assert all(row[0].text == row[1].text for row in a)


def test_batch_size_invariance(backend, tiny_random_model_dir):
    together = backend.generate(PROMPTS, SAMPLED)
    alone = [backend.generate([p], SAMPLED)[0] for p in PROMPTS]
    reverse = backend.generate(PROMPTS[::-1], SAMPLED)[::-1]
    small = HFBackend.from_model(backend.model, backend.tokenizer,
                                 max_batch_tokens=60).generate(PROMPTS, SAMPLED)
    for other in (alone, reverse, small):
        _assert_same(together, other)
    assert len({c.text for row in together for c in row}) == 3 * len(PROMPTS)  # samples really differ
    dup = backend.generate([PROMPTS[0], PROMPTS[0]], SAMPLED)
    _assert_same([dup[0]], [together[0]])
    _assert_same([dup[1]], [together[0]])


def test_prompts_of_different_lengths_prefill_in_length_groups_with_the_same_completions(backend):
    """After the shared prefix, prompts run in groups of similar length (few pad positions computed), the
    groups' caches stacked into one decoding batch; completions and log-probabilities equal each prompt
    decoded alone, in the caller's order."""
    from selfimprove.backends.prefill import length_groups

    assert length_groups([5, 40, 6, 41, 5]) == [[0, 4, 2], [1, 3]]
    assert length_groups([10, 10, 10]) == [[0, 1, 2]] and length_groups([]) == []
    head = "Solve each one. 12+30=42. 7*8=56. "
    prompts = [head + "a much longer problem: 9*9*9=", head + "3+4=", head + "long again: 1+2+3+4+5=", "6"]
    shapes = []
    hook = backend.model.register_forward_pre_hook(
        lambda m, a, kw: shapes.append(tuple(kw["input_ids"].shape)), with_kwargs=True)
    try:
        together = backend.generate(prompts[:3], SAMPLED)
    finally:
        hook.remove()
    assert shapes[0] == (1, len(head)) and shapes[1] == (1, 4) and shapes[2] == (2, 29)  # two groups
    for params in (SAMPLED, SamplingParams(max_tokens=12)):
        alone = [backend.generate([p], params)[0] for p in prompts]
        _assert_same(backend.generate(prompts, params), alone)  # no shared prefix: groups only
        _assert_same(backend.generate(prompts[:3], params), alone[:3])
    _assert_same(together, [backend.generate([p], SAMPLED)[0] for p in prompts[:3]])


def test_seeds(backend):
    a = backend.generate(PROMPTS, SAMPLED)
    assert _texts(a) == _texts(backend.generate(PROMPTS, SAMPLED))
    assert _texts(a) != _texts(backend.generate(PROMPTS, SAMPLED.replace(seed=8)))
    unseeded = SAMPLED.replace(seed=None)
    assert _texts(backend.generate(PROMPTS, unseeded)) != _texts(backend.generate(PROMPTS, unseeded))


def test_stop_string_cuts_text_and_logprobs(backend):
    full = backend.generate(["12+34="], SamplingParams(temperature=1.0, max_tokens=20, seed=3))[0][0]
    assert full.finish_reason == "length" and full.completion_tokens == 20
    stop = full.text[6:8]
    cut = full.text.index(stop)
    got = backend.generate(["12+34="], SamplingParams(temperature=1.0, max_tokens=20, seed=3,
                                                       stop=("never-there", stop)))[0][0]
    assert got.text == full.text[:cut] and got.finish_reason == "stop"
    kept = got.completion_tokens
    assert kept == len(got.token_logprobs) and cut <= kept < 20  # special tokens print as ''
    assert got.token_logprobs == pytest.approx(full.token_logprobs[:kept], abs=1e-5)


def test_max_tokens_gives_length(backend):
    out = backend.generate(PROMPTS, SamplingParams(max_tokens=5))
    assert all(c.finish_reason == "length" and c.completion_tokens == 5 for row in out for c in row)


def test_eos_stops_and_is_not_counted(tiny_random_model_dir):
    model, tok = _load(tiny_random_model_dir)
    plain = HFBackend.from_model(model, tok).generate(["12+34="], SamplingParams(max_tokens=12))[0][0]
    model.generation_config.eos_token_id = tok.convert_tokens_to_ids(plain.text[3])
    got = HFBackend.from_model(model, tok).generate(["12+34="], SamplingParams(max_tokens=12))[0][0]
    cut = plain.text.index(plain.text[3])
    assert (got.text, got.finish_reason, got.completion_tokens) == (plain.text[:cut], "stop", cut)


def test_logprobs_match_loglikelihood(backend):
    for params in (SamplingParams(max_tokens=10), SAMPLED):
        out = backend.generate(PROMPTS, params)
        # A random model samples <pad>/<unk>, which print as '' and so cannot be re-scored from the text.
        pairs = [(p, c) for p, row in zip(PROMPTS, out) for c in row if len(c.text) == c.completion_tokens]
        assert len(pairs) >= 4
        ll = backend.loglikelihood([p for p, _ in pairs], [c.text for _, c in pairs])
        assert ll == pytest.approx([c.sum_logprob for _, c in pairs], abs=1e-4)


def test_top_k_one_equals_greedy(backend):
    greedy = backend.generate(PROMPTS, SamplingParams(max_tokens=10))
    top1 = backend.generate(PROMPTS, SamplingParams(n=2, temperature=1.5, top_k=1, max_tokens=10, seed=5))
    assert [[row[0].text] * 2 for row in greedy] == _texts(top1)


def _next_token_probs(backend, prompt, temperature):
    ids = torch.tensor([backend.encode_prompt(prompt)])
    with torch.no_grad():
        logits = backend.model(input_ids=ids).logits[0, -1]
    return torch.softmax(logits / temperature, dim=-1)


def _by_text(backend, probs) -> dict[str, float]:
    """A token distribution over printed texts (special tokens all print as '')."""
    out: dict[str, float] = {}
    for i, p in enumerate(probs.tolist()):
        text = backend.tokenizer.decode([i], skip_special_tokens=True)
        out[text] = out.get(text, 0.0) + p
    return out


def test_sampling_follows_model_distribution(backend):
    probs = _by_text(backend, _next_token_probs(backend, "12+34=", 0.1))
    out = backend.generate(["12+34="], SamplingParams(n=2000, temperature=0.1, max_tokens=1, seed=0))[0]
    freq = {t: sum(c.text == t for c in out) / len(out) for t in probs}
    assert sum(freq.values()) == pytest.approx(1.0)
    assert 0.5 * sum(abs(freq[t] - probs[t]) for t in probs) < 0.06  # total variation distance


def test_top_k_and_top_p_restrict_support(backend):
    probs = _next_token_probs(backend, "12+34=", 0.3)
    sorted_p, order = probs.sort(descending=True)
    cum = sorted_p.cumsum(0).tolist()
    top_p = (cum[3] + cum[4]) / 2  # the nucleus is exactly the 5 most likely tokens (the 5th crosses top_p)
    for params, allowed in ((SamplingParams(top_k=3), order[:3]), (SamplingParams(top_p=top_p), order[:5])):
        texts = {backend.tokenizer.decode([i]) for i in allowed.tolist()}
        assert all(len(t) == 1 for t in texts)  # no special token allowed, so texts name tokens exactly
        out = backend.generate(["12+34="], params.replace(n=300, temperature=0.3, max_tokens=1, seed=1))[0]
        assert {c.text for c in out} == texts


def test_loglikelihood_matches_manual_forward(backend):
    prompts, conts = ["12+34=", "a", "hello there", "x"], ["46", "bcd e", "!?", ""]
    got = backend.loglikelihood(prompts, conts)
    for prompt, cont, value in zip(prompts, conts, got):
        tok = backend.tokenizer
        p_ids, c_ids = tok(prompt)["input_ids"], tok(cont, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p_ids + c_ids])
        with torch.no_grad():
            logp = torch.log_softmax(backend.model(input_ids=ids).logits[0].float(), dim=-1)
        want = sum(float(logp[len(p_ids) - 1 + j, t]) for j, t in enumerate(c_ids))
        assert value == pytest.approx(want, abs=1e-4)
    assert got[3] == 0.0 and got[1] < got[0] < 0
    with pytest.raises(ValueError):
        backend.loglikelihood(["a"], [])


def test_fingerprint_tracks_weights(tiny_random_model_dir, backend):
    model, tok = _load(tiny_random_model_dir)
    other = HFBackend.from_model(model, tok)
    before = other.fingerprint()
    assert before == backend.fingerprint() == HFBackend(str(tiny_random_model_dir)).fingerprint()
    weight = model.model.layers[1].mlp.down_proj.weight
    original = weight[3, 5].item()
    with torch.no_grad():
        weight[3, 5] += 0.01
    assert other.fingerprint() != before
    with torch.no_grad():
        weight[3, 5] = original  # restore exactly: x + 0.01 - 0.01 need not equal x in float32
    assert other.fingerprint() == before


def test_fingerprint_is_computed_once_per_state_of_the_weights(tiny_random_model_dir, monkeypatch):
    """The completion cache asks for the fingerprint on every call: the weights are read once, until an
    optimizer step (or any in-place change) moves them."""
    model, tok = _load(tiny_random_model_dir)
    other = HFBackend.from_model(model, tok)
    reads = []
    norm = torch.linalg.vector_norm
    monkeypatch.setattr(torch.linalg, "vector_norm", lambda *a, **k: reads.append(1) or norm(*a, **k))
    first = other.fingerprint()
    once = len(reads)
    assert once == len(list(model.parameters()))  # every tensor read for the first call
    assert [other.fingerprint() for _ in range(5)] == [first] * 5 and len(reads) == once
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(input_ids=torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]])).loss.backward()
    opt.step()  # in place, as the training loop's trainers do
    trained = other.fingerprint()
    assert trained != first and len(reads) == 2 * once
    assert other.fingerprint() == trained and len(reads) == 2 * once
    layer = model.model.layers[0].mlp
    layer.down_proj.weight = torch.nn.Parameter(torch.zeros_like(layer.down_proj.weight))  # a new tensor
    replaced = other.fingerprint()
    assert replaced != trained and len(reads) == 3 * once
    layer.up_proj.weight.data = layer.up_proj.weight.data * 2  # new storage under the same Parameter
    doubled = other.fingerprint()
    assert doubled != replaced and len(reads) == 4 * once
    model.to(torch.bfloat16)  # a cast: the same Parameters, new storage and dtype
    assert other.fingerprint() != doubled and len(reads) == 5 * once


def test_fingerprint_does_not_depend_on_where_the_model_lives(tiny_random_model_dir, backend, tmp_path):
    import shutil

    moved = shutil.copytree(tiny_random_model_dir, tmp_path / "elsewhere" / "model")
    there = HFBackend(str(moved))
    assert there.model.config._name_or_path != backend.model.config._name_or_path
    assert there.fingerprint() == backend.fingerprint()  # the same weights share the completion cache


def test_chat_template_path(tiny_random_model_dir, backend):
    from selfimprove.chat import conversation, plain

    model, tok = _load(tiny_random_model_dir)
    tok.chat_template = ("{% for m in messages %}{{ m['role'][0] }}: {{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}a:{% endif %}")
    chat = HFBackend.from_model(model, tok)  # the template is applied by default
    assert chat.capabilities.chat_template
    assert chat.encode_prompt("1+1") == tok("u: 1+1\na:")["input_ids"]
    assert chat.render_prompt("1+1") == "u: 1+1\na:"
    params = SamplingParams(n=2, max_tokens=8)  # greedy: sampling seeds also hash the prompt text
    _assert_same(chat.generate(["1+1"], params), backend.generate(["u: 1+1\na:"], params))
    assert chat.generate(["1+1"], params)[0][0].prompt_tokens == len("u: 1+1\na:")
    assert chat.loglikelihood(["1+1"], ["2"]) == pytest.approx(backend.loglikelihood(["u: 1+1\na:"], ["2"]))
    convo = conversation([("system", "be brief"), ("user", "1+1"), ("assistant", "it is")])
    assert chat.render_prompt(convo) == "s: be brief\nu: 1+1\na: it is"  # a final assistant turn continues
    off = HFBackend.from_model(model, tok, chat=False)
    assert not off.capabilities.chat_template and off.fingerprint() != chat.fingerprint()
    assert off.encode_prompt(convo) == tok(plain(convo))["input_ids"]
    assert plain(convo) == "be brief\n\n1+1\nit is"
    bare = HFBackend.from_model(model, _load(tiny_random_model_dir)[1])  # no template: plain text
    assert not bare.capabilities.chat_template and bare.encode_prompt("1+1") == tok("1+1")["input_ids"]


def test_from_model_matches_dir_and_keeps_training_mode(tiny_random_model_dir, backend):
    model, tok = _load(tiny_random_model_dir)
    model.train()
    mem = HFBackend.from_model(model, tok, name="policy")
    assert mem.name == "hf:policy" and mem.capabilities.trainable
    _assert_same(mem.generate(PROMPTS, SAMPLED), backend.generate(PROMPTS, SAMPLED))
    assert model.training


def test_errors_are_data_or_user_errors(backend, tmp_path):
    long = backend.generate(["1" * 300, "ok"], SamplingParams(max_tokens=4))
    assert long[0][0].finish_reason == "error" and "context" in long[0][0].error
    assert long[1][0].ok and long[1][0].completion_tokens == 4
    near = backend.generate(["1" * 250], SamplingParams(max_tokens=20))[0][0]
    assert near.finish_reason == "length" and near.completion_tokens == 6  # capped by the 256-token context
    with pytest.raises(UserError, match="model"):
        HFBackend(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="dtype"):
        HFConfig(model="x", dtype="float8")


def test_bos_added_when_the_tokenizer_adds_it(tiny_random_model_dir, backend):
    from tokenizers.processors import TemplateProcessing

    model, tok = _load(tiny_random_model_dir)
    tok.backend_tokenizer.post_processor = TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", tok.bos_token_id)])
    with_bos = HFBackend.from_model(model, tok)
    assert with_bos.encode_prompt("12") == [tok.bos_token_id] + backend.encode_prompt("12")
    out = with_bos.generate(["12+34="], SamplingParams(max_tokens=8))[0][0]
    assert out.prompt_tokens == 7
    assert with_bos.loglikelihood(["12+34="], [out.text]) == pytest.approx([out.sum_logprob], abs=1e-4)
    assert out.sum_logprob != pytest.approx(backend.loglikelihood(["12+34="], [out.text])[0], abs=1e-3)


def test_a_shared_prefix_is_encoded_once_with_the_same_results(backend):
    from selfimprove.backends.batching import MIN_SHARED, shared_prefix

    head = "Solve each one. 12+30=42. 7*8=56. "  # every prompt starts with it, as few-shot examples do
    prompts = [head + "3+4=", head + "10-2=", head + "a longer one: 9*9=", head + "6"]
    ids = [tuple(backend.encode_prompt(p)) for p in prompts]
    assert shared_prefix(ids) == len(head) >= MIN_SHARED
    assert shared_prefix(ids[:1]) == 0 and shared_prefix([ids[0], ids[0][:len(head) + 1]]) == len(head)
    assert shared_prefix([(1,) * 40, (1,) * 40]) == 39  # each keeps its last token
    assert shared_prefix([(1,) * 40, (1,) * (MIN_SHARED - 1) + (2,)]) == 0  # too short to be worth a pass
    calls = []
    hook = backend.model.register_forward_pre_hook(
        lambda _m, args, kwargs: calls.append(kwargs["input_ids"].shape), with_kwargs=True)
    try:
        for params in (SamplingParams(max_tokens=8), SAMPLED):
            calls.clear()
            together = backend.generate(prompts, params)
            assert calls[0] == (1, len(head))  # the prefix once, for the whole batch
            # then only the rest of each (in groups of similar length: ``prefill.length_groups``)
            assert all(c[1] < len(head) for c in calls[1:])
            alone = [backend.generate([p], params)[0] for p in prompts]  # one prompt: nothing shared
            _assert_same(together, alone)
    finally:
        hook.remove()


def test_the_output_layer_runs_in_slices_with_bit_identical_logits():
    from selfimprove.backends.output_layer import MIN_VOCAB, sliced_output_layer

    class Model(torch.nn.Module):
        def __init__(self, head):
            super().__init__()
            self.head = head

        def get_output_embeddings(self):
            return self.head

    torch.manual_seed(0)
    head = torch.nn.Linear(24, MIN_VOCAB + 1000)
    x = torch.randn(32, 24)
    want = head(x)
    with sliced_output_layer(Model(head)):
        assert "forward" in vars(head)  # sliced inside the block
        assert torch.equal(head(x), want)
    assert "forward" not in vars(head) and torch.equal(head(x), want)  # restored
    small, other = torch.nn.Linear(24, 100), torch.nn.Sequential(torch.nn.Linear(24, MIN_VOCAB))
    for layer in (small, other):  # a small vocabulary or another kind of layer: left alone
        with sliced_output_layer(Model(layer)):
            assert "forward" not in vars(layer)
