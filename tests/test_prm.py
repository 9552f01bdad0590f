"""Process reward model: rollout step labels on hand-built rollouts, label rules, step metrics, aggregation, a
PRM trained and loaded on a tiny model, and the PRM as best-of-n verifier and as a search step value."""

from __future__ import annotations

import re

import pytest

from selfimprove.backends.scripted import ScriptedBackend
from selfimprove.errors import UserError
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.training.prm import PRMRow, label_steps, rollout_labels
from selfimprove.training.prm_score import aggregate, prm_metrics

TASK = ArithmeticTask(n_train=4, n_dev=4, n_test=4)
EX = TASK.examples("dev")[
    0
]  # 'b600 r330 u400 j750:', gold 100, solution ' b600=600 r330=930 u400=340 j750=001 #001'
P = TASK.prompt(EX)
WRONG = " b600=600 r330=930 u400=999 j750=111 #111"
WRONG2 = " b600=600 r330=000 #000"
ROLLOUTS = {  # the continuations sampled from each prefix (m = 2)
    " b600=600": [" r330=930 u400=340 j750=001 #001", " r330=000 #000"],
    " b600=600 r330=930": [" u400=340 j750=001 #001"],
    " b600=600 r330=930 u400=999": [" j750=111 #111"],
    " b600=600 r330=930 u400=999 j750=111": [" #111"],
    " b600=600 r330=000": [" #000"],
}


def rollout_backend(more: dict | None = None) -> ScriptedBackend:
    table = {**ROLLOUTS, **(more or {})}
    return ScriptedBackend(rules=[(re.escape(P + k) + "$", v) for k, v in table.items()], default=None)


def test_rollout_labels_on_hand_built_rollouts():
    backend = rollout_backend()
    rows, calls = rollout_labels(backend, TASK, [EX], [[WRONG, WRONG2]], m=2, rule="some")
    assert (
        len(backend.calls) == 5 and len({id(p) for _, p in backend.calls}) == 1
    )  # one call, shared prefix once
    a, b = rows
    assert (
        a.steps == [" b600=600", " r330=930", " u400=999", " j750=111", " #111"] and "".join(a.steps) == WRONG
    )
    assert a.shares == [0.5, 1.0, 0.0, 0.0, 0.0]  # last step: the solution's own (wrong) answer
    assert a.labels == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert b.shares == [0.5, 0.0, 0.0] and b.labels == [1.0, 0.0, 0.0]
    assert {c.prompt for c in calls} == {P + k for k in ROLLOUTS}
    assert sorted(c.info["share"] for c in calls) == [0.0, 0.0, 0.0, 0.5, 1.0]
    soft, _ = rollout_labels(rollout_backend(), TASK, [EX], [[WRONG]], m=2, rule="soft")
    assert soft[0].labels == [0.5, 1.0, 0.0, 0.0, 0.0]
    more = {
        " b600=600 r330=930 u400=340": [" j750=001 #001"],
        " b600=600 r330=930 u400=340 j750=001": [" #001"],
    }
    right, _ = rollout_labels(rollout_backend(more), TASK, [EX], [[TASK.solution(EX)]], m=2, rule="most")
    assert right[0].labels == [
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
    ]  # a correct solution's last step is good by its own answer


def test_label_rules():
    shares = [1.0, 0.5, 0.25, 0.0]
    assert label_steps(shares, "some") == [1.0, 1.0, 1.0, 0.0]
    assert label_steps(shares, "most") == [1.0, 1.0, 0.0, 0.0]
    assert label_steps(shares, "soft") == shares
    # ReST-MCTS*: v_k = max(v_{k-1} + (1 - v_{k-1}) / (K - k + 1) * (1 - 2 r_k), 0)
    assert label_steps(shares, "inferred") == pytest.approx([0.25, 0.5, 0.75, 0.5])
    assert label_steps([1.0, 1.0, 1.0], "inferred") == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert label_steps([0.0, 0.0], "inferred") == [0.0, 0.0]
    with pytest.raises(ValueError, match="some, most, soft, inferred"):
        label_steps(shares, "any")


def test_step_metrics_against_labels():
    rows = [PRMRow("p", ["a", "b", "c"], [1.0, 0.0, 0.0], "x"), PRMRow("p", ["a", "b"], [1.0, 1.0], "y")]
    m = prm_metrics([[0.9, 0.2, 0.7], [0.8, 0.4]], rows)
    assert m["steps"] == 5 and m["accuracy"] == pytest.approx(3 / 5)
    # good class: tp 2 (x0, y0), fp 1 (x2), fn 1 (y1) -> 4/6; bad class: tp 1 (x1), fp 1 (y1), fn 1 (x2)
    # -> 2/4
    assert m["f1_good"] == pytest.approx(4 / 6) and m["f1_bad"] == pytest.approx(0.5)
    assert m["majority_baseline"] == pytest.approx(3 / 5) and m["first_error_found"] == 1.0


def test_aggregation():
    assert aggregate([0.9, 0.2, 0.8], "last") == 0.8
    assert aggregate([0.9, 0.2, 0.8], "min") == 0.2
    assert aggregate([0.5, 0.5], "product") == 0.25
    assert aggregate([], "min") is None


class FakeScorer:
    """A PRM double: a step is good (0.9) when its running sum is right for EX, bad (0.1) otherwise; the
    answer
    step is 0.6 (so `last` and `min` disagree on a path with an early wrong step)."""

    scored_tokens = 0

    def score(self, prompts, steps):
        good = set(TASK.solution(EX).split(" ")[1:-1])
        return [
            [0.6 if s.strip().startswith("#") else 0.9 if s.strip() in good else 0.1 for s in ss]
            for ss in steps
        ]


@pytest.fixture
def fake_prm(monkeypatch):
    monkeypatch.setattr("selfimprove.verifiers.prm.load_scorer", lambda path: FakeScorer())


def test_best_of_n_with_the_prm_picks_by_aggregated_step_scores(fake_prm):
    from selfimprove.strategies import get_strategy

    early_wrong = " b600=600 r330=000 #000"  # steps 0.9, 0.1, 0.6: min 0.1, last 0.6
    right = TASK.solution(EX)  # 0.9 x4, 0.6: min 0.6, last 0.6
    backend = ScriptedBackend(rules=[(":$", [early_wrong, right])])
    by_min = get_strategy("best-of-n:n=2,temperature=0.7,verifier=prm:path=X;aggregate=min").run(
        backend, TASK, [EX]
    )
    assert by_min[0].info["scores"] == [pytest.approx(0.1), pytest.approx(0.6)]
    assert by_min[0].info["selected"] == 1 and by_min[0].final_answer == "100"
    by_last = get_strategy("best-of-n:n=2,temperature=0.7,verifier=prm:path=X").run(backend, TASK, [EX])
    assert by_last[0].info["scores"] == [
        pytest.approx(0.6),
        pytest.approx(0.6),
    ]  # last: a tie, the first wins
    prod = get_strategy("weighted-best-of-n:n=2,temperature=0.7,verifier=prm:path=X;aggregate=product")
    assert prod.run(backend, TASK, [EX])[0].final_answer == "100"
    step = next(s for s in by_min[0].steps if s.kind == "prm")
    assert step.info["step_scores"][0] == [pytest.approx(0.9), pytest.approx(0.1), pytest.approx(0.6)]


def test_prm_as_the_step_value_of_beam_search(fake_prm):
    from selfimprove.strategies import get_strategy

    def step(prompt, i):  # two candidate next steps: the right running sum and a wrong one
        done = prompt.count("=")
        right = TASK.solution(EX).split(" ")[1:]
        return right[done] if i % 2 == 0 else right[done].split("=")[0] + "=777"

    backend = ScriptedBackend(rules=[(r" $", step)])
    trace = get_strategy("beam:beams=1,samples=2,value=prm,prm=X,tau=0").run(backend, TASK, [EX])[0]
    assert trace.final_answer == "100"
    nodes = trace.steps[-1].info["nodes"]
    assert all(
        n["info"]["prm"] == pytest.approx(0.9) for n in nodes if n["info"].get("kept") and n["depth"] < 5
    )
    with pytest.raises(UserError, match="prm=DIR"):
        get_strategy("beam:value=prm")


@pytest.mark.slow
def test_a_prm_trains_saves_loads_and_scores(tiny_random_model_dir, tmp_path):
    from transformers import AutoModelForTokenClassification

    from selfimprove.training.prm import PRMSettings, train_prm
    from selfimprove.training.prm_score import PRMScorer

    rows, _ = rollout_labels(rollout_backend(), TASK, [EX], [[WRONG, WRONG2]], m=2)
    info = train_prm(
        tiny_random_model_dir, rows * 8, PRMSettings(lr=1e-2, max_steps=12, batch_size=4), tmp_path / "prm"
    )
    assert info["steps"] == 12 and info["reads_gold"] and info["last_loss"] < info["first_loss"]
    assert AutoModelForTokenClassification.from_pretrained(tmp_path / "prm").config.num_labels == 2
    scores = PRMScorer(tmp_path / "prm").score([r.prompt for r in rows], [r.steps for r in rows])
    assert [len(s) for s in scores] == [5, 3] and all(0 < x < 1 for s in scores for x in s)
    m = prm_metrics(scores, rows)
    assert m["steps"] == 8 and 0 <= m["accuracy"] <= 1


TEMPLATE = ("{% for m in messages %}{{ m['role'][0] }}: {{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}a:{% endif %}")  # characters the tiny tokenizer has


def test_rollouts_on_a_chat_backend_continue_the_prefix_as_the_reply():
    """On a chat backend a step prefix is the start of the assistant's reply (a final assistant message), not
    text appended to the user's question (what ``prompt + prefix`` did)."""
    from selfimprove.backends.base import Capabilities
    from selfimprove.chat import messages

    seen: list[str] = []

    def reply(prompt, i):
        seen.append(prompt)
        return ROLLOUTS[messages(prompt)[-1]["content"]][i % len(ROLLOUTS[messages(prompt)[-1]["content"]])]

    backend = ScriptedBackend([(r"", reply)])
    backend.capabilities = Capabilities(chat_template=True)
    rows, _ = rollout_labels(backend, TASK, [EX], [[WRONG2]], m=2)
    assert rows[0].shares == [0.5, 0.0, 0.0]
    assert seen and all(messages(p)[:-1] == messages(P) for p in seen)
    assert {messages(p)[-1]["role"] for p in seen} == {"assistant"}


def test_prm_reads_the_prompt_through_the_chat_template(tiny_random_model_dir, tmp_path):
    """A chat policy's PRM scores the text the policy saw: the template's rendering with the solution as the
    assistant's reply, never the conversation's marker lines; ``chat=False`` reads the plain text."""
    from transformers import AutoTokenizer

    from selfimprove.chat import conversation, plain
    from selfimprove.training.prm import step_positions

    tok = AutoTokenizer.from_pretrained(tiny_random_model_dir)
    tok.chat_template = TEMPLATE
    prompt = conversation([("system", "s"), ("user", "1+2")])
    ids, pos = step_positions(tok, prompt, ["3\n", "ok"])
    assert ids == tok("s: s\nu: 1+2\na:3\nok", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids[: pos[0] + 1]) == "s: s\nu: 1+2\na:3\n" and pos[1] == len(ids) - 1
    plain_ids, _ = step_positions(tok, prompt, ["3\n", "ok"], chat=False)
    assert plain_ids == tok(plain(prompt) + "3\nok")["input_ids"] != tok(prompt + "3\nok")["input_ids"]


@pytest.mark.slow
def test_prm_trains_only_the_top_blocks_and_remembers_the_chat_mode(tiny_random_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from selfimprove.training.prm import PRMSettings, train_prm
    from selfimprove.training.prm_score import PRMScorer

    policy = tmp_path / "policy"
    tok = AutoTokenizer.from_pretrained(tiny_random_model_dir)
    tok.chat_template = TEMPLATE
    model = AutoModelForTokenClassification.from_pretrained(tiny_random_model_dir, num_labels=2)
    model.save_pretrained(policy)
    tok.save_pretrained(policy)
    rows, _ = rollout_labels(rollout_backend(), TASK, [EX], [[WRONG, WRONG2]], m=2)
    info = train_prm(policy, rows * 2, PRMSettings(lr=1e-2, max_steps=2, batch_size=4, train_layers=1),
                     tmp_path / "prm", chat=False)
    before = dict(AutoModelForTokenClassification.from_pretrained(policy).named_parameters())
    after = dict(AutoModelForTokenClassification.from_pretrained(tmp_path / "prm").named_parameters())
    changed = {n for n in after if "score" not in n and not torch.equal(after[n], before[n])}
    assert changed and all(".layers.1." in n or "norm" in n for n in changed)  # block 0, embeddings frozen
    assert info["chat"] is False and 0 < info["trainable_parameters"] < sum(p.numel() for p in after.values())
    scorer = PRMScorer(tmp_path / "prm")
    assert scorer.chat is False and tok.chat_template  # the saved tokenizer keeps its template; not used
    assert [len(s) for s in scorer.score([r.prompt for r in rows], [r.steps for r in rows])] == [5, 3]
    with pytest.raises(ValueError, match="train_layers"):
        PRMSettings(train_layers=-2)


def test_the_prm_verifier_splits_steps_by_the_delimiter_the_prm_learned(monkeypatch):
    """A PRM trained with its own delimiter (free text split at '. ') is asked about those steps, not the
    task's lines."""
    from selfimprove.verifiers.prm import PRMVerifier

    class SplitAtDots(FakeScorer):
        delimiter = ". "

        def __init__(self):
            self.seen = []

        def score(self, prompts, steps):
            self.seen.extend(steps)
            return [[0.5] * len(s) for s in steps]

    scorer = SplitAtDots()
    monkeypatch.setattr("selfimprove.verifiers.prm.load_scorer", lambda path: scorer)
    from selfimprove.tasks import get_task

    words = get_task("word-problems")  # free text: one line per step by default
    ex = words.examples("dev")[0]
    PRMVerifier(None, words, path="X").assess([ex], [["6 x 7 = 42. The answer is 42."]])
    assert scorer.seen == [["6 x 7 = 42. ", "The answer is 42."]]


def test_a_step_score_never_reads_the_next_steps_first_token(smollm2_dir):
    """SmolLM2's BPE merges a step's trailing space with the next word (" The"): the step is scored at its
    own last token ('.'), the text of the next step never in it; the prompt is the chat template's."""
    from transformers import AutoTokenizer

    from selfimprove.tasks import get_task
    from selfimprove.training.prm import step_positions

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    task = get_task("word-problems:shots=1")
    prompt = task.prompt(task.examples("dev")[0])
    ids, pos = step_positions(tok, prompt, ["6 x 7 = 42. ", "The answer is 42."])
    assert [tok.decode(ids[p]) for p in pos] == [".", "."] and pos[1] == len(ids) - 1
    assert tok.decode(ids[: pos[0] + 1]).endswith("<|im_start|>assistant\n6 x 7 = 42.")
    assert "<<user>>" not in tok.decode(ids)
