"""Learning from search: step-level pairs from a hand-built MCTS tree (MCTS-DPO), first-error pairs from
hand-built step labels (Step-DPO), PRM labels from a tree (ReST-MCTS*), the no-EOS treatment of step pairs in
DPO, and mcts-dpo / step-dpo / rest-mcts through the one round loop (resumable)."""

from __future__ import annotations

import json

import pytest

from selfimprove.records import Completion, Step, Trace, Verdict
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.training.prm import PRMRow
from selfimprove.training.search_data import first_error_pairs, sibling_pairs, tree_prm_rows

TASK = ArithmeticTask(n_train=8, n_dev=4, n_test=4)
EX = TASK.examples("dev")[0]  # 'b600 r330 u400 j750:', gold 100


def node(
    i, parent, step, prefix, *, visits=0, value_sum=0.0, terminal=False, answer=None, children=(), **info
):
    return {
        "id": i,
        "parent": parent,
        "depth": 0 if parent is None else 1,
        "step": step,
        "prefix": prefix,
        "value": None,
        "visits": visits,
        "value_sum": value_sum,
        "tokens": len(step),
        "logprob": 0.0,
        "terminal": terminal,
        "answer": answer,
        "info": {"children": list(children), **info},
    }


def tree_trace(nodes) -> Trace:
    return Trace(EX.id, "mcts", steps=(Step(kind="tree", info={"nodes": nodes}),))


HAND_TREE = [
    node(0, None, "", "", visits=6, value_sum=3.0, children=(1, 2, 3)),
    node(
        1,
        0,
        " b600=600",
        " b600=600",
        visits=3,
        value_sum=2.7,
        children=(4, 5),
        rollout_answers=["100", "100"],
    ),  # Q 0.9
    node(2, 0, " b600=000", " b600=000", visits=2, value_sum=0.2, rollout_answers=["7", "100"]),  # Q 0.1
    node(3, 0, " b600=601", " b600=601", visits=1, value_sum=0.5),  # Q 0.5
    node(4, 1, " r330=930", " b600=600 r330=930", visits=1, value_sum=0.6, rollout_answers=["100"]),
    node(5, 1, " #001", " b600=600 #001", visits=1, value_sum=1.0, terminal=True, answer="100"),
]


def test_sibling_pairs_from_a_hand_built_tree():
    pairs, stats = sibling_pairs([tree_trace(HAND_TREE)], {EX.id: "P:"}, min_gap=0.3)
    assert len(pairs) == 1  # node 1's children: one finished, one not -> no pair
    p = pairs[0]
    assert (p.prompt, p.chosen, p.rejected) == ("P:", " b600=600", " b600=000")  # Q 0.9 vs 0.1
    assert p.partial and p.chosen_score == pytest.approx(0.9) and p.rejected_score == pytest.approx(0.1)
    assert stats["skipped"] == {"one_finished_one_not": 1}
    assert p.trl()["partial"] is True
    tight, stats = sibling_pairs([tree_trace(HAND_TREE)], {EX.id: "P:"}, min_gap=0.9)
    assert tight == [] and stats["skipped"]["gap_below_min"] == 2  # the root's children and node 1's
    nodes = [dict(n) for n in HAND_TREE]
    nodes[5] = {
        **nodes[5],
        "terminal": False,
    }  # both children of node 1 unfinished: a second pair, prompt+prefix
    pairs, _ = sibling_pairs([tree_trace(nodes)], {EX.id: "P:"}, min_gap=0.3, max_pairs=1)
    assert len(pairs) == 1 and pairs[0].chosen == " b600=600"  # the widest gap kept under the cap
    pairs, _ = sibling_pairs([tree_trace(nodes)], {EX.id: "P:"}, min_gap=0.3)
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs][1] == ("P: b600=600", " #001", " r330=930")


def test_whole_response_pairs_keep_their_stored_layout():
    from selfimprove.training.preferences import PreferencePair

    d = PreferencePair("p", "a", "b", "x").to_dict()
    assert "partial" not in d and "partial" not in PreferencePair("p", "a", "b", "x").trl()
    assert PreferencePair.from_dict({**d, "partial": True}).partial


def test_tree_prm_rows_share_of_correct_answers_below_each_node():
    rows = tree_prm_rows(tree_trace(HAND_TREE), EX, TASK, "P:", rule="soft")
    assert len(rows) == 1 and rows[0].steps == [" b600=600", " #001"]
    # node 1: its rollouts (100, 100), node 4's rollout (100), leaf 5 (100) -> 4/4; leaf 5 itself 1/1
    assert rows[0].shares == [1.0, 1.0]
    nodes = [dict(n) for n in HAND_TREE]
    nodes[4] = {**nodes[4], "info": {**nodes[4]["info"], "rollout_answers": ["5", "6"]}}
    assert tree_prm_rows(tree_trace(nodes), EX, TASK, "P:", rule="soft")[0].shares == [
        pytest.approx(0.6),
        1.0,
    ]


def test_first_error_pairs_from_hand_built_labels():
    split = TASK.step_format().split
    wrong = " b600=600 r330=000 #000"
    row = PRMRow("P:", split(wrong), [1.0, 0.0, 0.0], EX.id, "some", [0.5, 0.0, 0.0])
    gen = Step(
        kind="generate",
        prompt="P:",
        completions=(Completion(text=wrong), Completion(text=" b600=600 r")),
        answers=("000", None),
        verdicts=(Verdict(0.0, False), Verdict(None, None)),
    )
    roll = Step(
        kind="rollout",
        prompt="P: b600=600",
        completions=(Completion(text=" r330=000 #000"), Completion(text=" r330=930 u400=340 j750=001 #001")),
        answers=("0", "100"),
        info={"correct": [False, True]},
    )
    labels = Step(kind="step-labels", info={"rows": [row.to_dict()]})
    pairs, stats = first_error_pairs([Trace(EX.id, "step-dpo", steps=(gen, roll, labels))], split)
    assert stats["pairs"] == 1
    p = pairs[0]
    assert (p.prompt, p.chosen, p.rejected, p.partial) == ("P: b600=600", " r330=930", " r330=000", True)
    at_end = PRMRow("P:", split(" b600=600 r330=930 #7"), [1.0, 1.0, 0.0], EX.id, "some", [0.5, 1.0, 0.0])
    roll_end = Step(kind="rollout", prompt="P: b600=600 r330=930", answers=("100",), info={"correct": [True]},
                    completions=(Completion(text=" u400=340 j750=001 #001"),))  # continues: not an ending
    pairs, stats = first_error_pairs([Trace(EX.id, "s", steps=(gen, roll_end, Step(
        kind="step-labels", info={"rows": [at_end.to_dict()]})))], split)
    assert pairs == [] and stats["skipped"] == {"one_finished_one_not": 1}
    first_wrong = PRMRow("P:", split(wrong), [0.0, 0.0, 0.0], EX.id, "some", [0.0, 0.0, 0.0])
    pairs, stats = first_error_pairs(
        [
            Trace(
                EX.id,
                "s",
                steps=(gen, roll, Step(kind="step-labels", info={"rows": [first_wrong.to_dict()]})),
            )
        ],
        split,
    )
    assert pairs == [] and stats["skipped"] == {
        "no_correct_continuation": 1
    }  # no correct sample to start from


def test_step_pairs_are_trained_without_eos(tiny_random_model_dir):
    import datasets
    from transformers import AutoTokenizer

    from selfimprove.training.dpo import _trainer_classes, dpo_config
    from selfimprove.training.settings import DPOSettings
    from selfimprove.training.sft import load_policy

    model, tok = load_policy(tiny_random_model_dir)
    rows = [
        {"prompt": "P:", "chosen": " a1=1", "rejected": " a1=2", "weight": 1.0, "partial": True},
        {"prompt": "P:", "chosen": " #1", "rejected": " #2", "weight": 1.0, "partial": False},
    ]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        trainer = _trainer_classes()["WeightedDPOTrainer"](
            model=model,
            ref_model=None,
            args=dpo_config(DPOSettings(max_steps=1, batch_size=2), tmp, 2),
            processing_class=tok,
            train_dataset=datasets.Dataset.from_list(rows),
        )
    eos = AutoTokenizer.from_pretrained(tiny_random_model_dir).eos_token_id
    step, whole = trainer.train_dataset[0], trainer.train_dataset[1]
    assert step["chosen_ids"][-1] != eos and step["rejected_ids"][-1] != eos
    assert whole["chosen_ids"][-1] == eos and whole["rejected_ids"][-1] == eos
    assert "partial" not in trainer.train_dataset.column_names


@pytest.mark.slow
@pytest.mark.parametrize(
    "method,extra",
    [
        ("mcts-dpo", {"iterations": 3}),
        ("step-dpo", {}),
        ("rest-mcts", {"iterations": 3, "prm_max_steps": 2, "holdout": 0.5}),
    ],
)
def test_learning_from_search_runs_through_the_loop_and_resumes(
    method, extra, tiny_random_model_dir, tmp_path
):
    from selfimprove.backends.scripted import scripted_calculator
    from selfimprove.training import LoopConfig, run_loop

    def cfg(rounds):
        return LoopConfig.from_dict(
            {
                "method": method,
                "rounds": rounds,
                "n": 2,
                "train_limit": 4,
                "eval_limit": 2,
                "max_steps": 1,
                "batch_size": 4,
                **extra,
            }
        )

    run = tmp_path / "run"
    calls = []

    def backend(path):
        calls.append(path)
        return scripted_calculator()

    s1 = run_loop(cfg(1), TASK, tiny_random_model_dir, run, make_backend=backend, log=lambda m: None)
    assert s1["method"] == method and s1["rounds_done"] == 1
    before = (run / "round-1/traces.jsonl").stat().st_mtime_ns
    s2 = run_loop(cfg(2), TASK, tiny_random_model_dir, run, make_backend=backend, log=lambda m: None)
    assert s2["rounds_done"] == 2 and (run / "round-1/traces.jsonl").stat().st_mtime_ns == before  # resumed
    data = json.loads((run / "round-1/data.json").read_text())
    assert data["generated_tokens"] > 0
    if method == "rest-mcts":
        train = json.loads((run / "round-1/train.json").read_text())
        assert train["prm"]["rows"] > 0 and (run / "round-1/prm/prm.json").exists()
        assert "accuracy" in train["prm_eval"] or train["prm_eval"]["solutions"] == 0
        assert json.loads((run / "round-2/data.json").read_text())["guided_by_prm"] is True
        assert data["rows"] == len((run / "round-1/rows.jsonl").read_text().splitlines()) > 0
    else:
        pairs = [json.loads(x) for x in (run / "round-1/pairs.jsonl").read_text().splitlines()]
        assert pairs and all(p["method"] == method for p in pairs)
        assert any(p.get("partial") for p in pairs) or method == "step-dpo"
        assert "paired" in s2  # guarded: paired tests of every round against round 0
