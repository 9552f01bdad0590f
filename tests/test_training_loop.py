"""The rounds loop end to end: every method for one round on the tiny random model (mechanics: it is random,
so accuracy is ~0), and with the library's scripted double + real TRL training for exact kept rows, replay,
the easy-to-hard frontier, ReST-EM's restart from the base model, and the patience rule."""

from __future__ import annotations

import json

import pytest

from selfimprove.backends.scripted import ScriptedCalculator
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.training.config import LoopConfig
from selfimprove.training.loop import eval_traces, round_metrics, run_loop

SMALL = {"k": 2, "train_limit": 4, "eval_limit": 3, "max_tokens": 20, "max_steps": 2, "batch_size": 4}


def task() -> ArithmeticTask:
    return ArithmeticTask(n_train=12, n_dev=6, n_test=6)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def config(**values) -> LoopConfig:
    return LoopConfig.from_dict(values)


@pytest.mark.parametrize("method", ["star", "rest-em", "lmsi", "easy-to-hard", "no-filter"])
def test_one_round_of_each_method_on_the_tiny_random_model(method, tiny_random_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    e2h = {"difficulty_splits": ("terms=6",)} if method == "easy-to-hard" else {}
    cfg = config(method=method, rounds=1, eval_splits=("test-hard",), **SMALL, **e2h)
    summary = run_loop(cfg, task(), tiny_random_model_dir, tmp_path / "run", log=lambda m: None)
    run = tmp_path / "run"
    assert summary["rounds_done"] == 1 and json.loads((run / "state.json").read_text()) == {
        "round": 1, "phase": "eval"}
    r1 = run / "round-1"
    AutoModelForCausalLM.from_pretrained(r1), AutoTokenizer.from_pretrained(r1)  # a loadable HF model dir
    traces, rows = read_jsonl(r1 / "traces.jsonl"), read_jsonl(r1 / "rows.jsonl")
    assert len(traces) == len({t["example_id"] for t in traces}) == 4
    data, train = json.loads((r1 / "data.json").read_text()), json.loads((r1 / "train.json").read_text())
    assert data["rows"] == len(rows) and data["examples"] == 4
    per_example = 1 if method == "no-filter" else 2
    hinted = sum(len(tr["steps"]) > 1 and tr["steps"][1]["kind"] == "rationalise" for tr in traces)
    assert data["samples"] == 4 * per_example + hinted  # star adds one hinted sample per unsolved example
    assert (train["steps"] > 0) == (len(rows) > 0)
    metrics = round_metrics(run)
    splits = ["dev", "test-hard"] + (["terms=6"] if method == "easy-to-hard" else [])
    assert [m["round"] for m in metrics] == [0, 1] and sorted(metrics[1]["eval"]) == sorted(splits)
    for m in metrics:
        for a in m["eval"].values():
            assert a["n"] == 3 and 0 <= a["unparsed"] <= 3 and a["ci95"] is not None
    assert len(read_jsonl(run / "metrics.jsonl")) == 2
    pairs = list(zip(eval_traces(run, 0, "dev"), eval_traces(run, 1, "dev")))
    assert len(pairs) == 3 and all(a.example_id == b.example_id for a, b in pairs)  # paired across rounds
    assert set(metrics[1]["seconds"]) == {"generate", "select", "train", "eval"}
    if method == "no-filter":  # the control trains on whatever the model said
        assert len(rows) == 4 and train["steps"] == 2


# ---- the library's scripted double with real TRL training --------------------------------------------------


def scripted(t: ArithmeticTask) -> ScriptedCalculator:
    """The ``scripted`` model: half its samples wrong, wrong sample i off by i + 1 (no two wrong samples
    agree), hinted prompts solved to the hint. Seed 11: the first six train problems get 3, 0, 1, 3, 1, 2
    right samples of 4 (``n_right``), so every test below sees solved, unsolved and split pools."""
    return ScriptedCalculator(error_rate=0.5, seed=11, distinct_errors=True)


def counting_backend(t, calls: list[int]):
    """A backend factory (``make_backend``) of scripted backends that append each generate call's batch size
    to ``calls``."""
    def make(p):
        b = scripted(t)
        inner = b.generate

        def generate(prompts, params):
            calls.append(len(prompts))
            return inner(prompts, params)
        b.generate = generate
        return b
    return make


def n_right(t: ArithmeticTask, examples, n: int) -> list[int]:
    """How many of the double's ``n`` samples of each example are right (its ``right`` says so)."""
    b = scripted(t)
    return [sum(b.right(t.prompt(e), i) for i in range(n)) for e in examples]


def test_star_keeps_exact_rows_and_rationalises(tiny_random_model_dir, tmp_path):
    t = task()
    cfg = config(method="star", rounds=1, k=4, train_limit=6, eval_limit=3, max_steps=2, batch_size=4)
    run_loop(cfg, t, tiny_random_model_dir, tmp_path / "run", make_backend=lambda p: scripted(t),
             log=lambda m: None)
    r1 = tmp_path / "run" / "round-1"
    rows = read_jsonl(r1 / "rows.jsonl")
    examples = t.examples("train")[:6]
    solved = [c > 0 for c in n_right(t, examples, 4)]
    assert any(solved) and not all(solved)  # some examples need rationalising
    expected = [{"prompt": t.prompt(e), "completion": t.solution(e), "example_id": e.id,
                 "source": "sample" if ok else "rationalised", "answer": e.answer, "round_idx": 1}
                for e, ok in zip(examples, solved)]
    assert rows == expected  # one row per example: duplicates of the same right text are deduplicated
    assert not any("#" in r["prompt"] for r in rows)  # trained without the hint
    data = json.loads((r1 / "data.json").read_text())
    assert data["rationalised"] == sum(r["source"] == "rationalised" for r in rows)
    assert json.loads((r1 / "train.json").read_text())["steps"] == 2


def test_lmsi_pseudo_labels_and_precision_report(tiny_random_model_dir, tmp_path):
    t = task()
    cfg = config(method="lmsi", rounds=1, k=4, threshold=0.5, train_limit=6, eval_limit=3, max_steps=2,
                     batch_size=4)
    run_loop(cfg, t, tiny_random_model_dir, tmp_path / "run", make_backend=lambda p: scripted(t),
             log=lambda m: None)
    r1 = tmp_path / "run" / "round-1"
    examples = t.examples("train")[:6]
    # wrong samples never agree: the right answer wins with a vote share >= 0.5 exactly when >= 2 of 4 are
    # right
    accepted = [c >= 2 for c in n_right(t, examples, 4)]
    assert any(accepted) and not all(accepted)
    rows, labels = read_jsonl(r1 / "rows.jsonl"), read_jsonl(r1 / "labels.jsonl")
    assert [r["example_id"] for r in rows] == [e.id for e, ok in zip(examples, accepted) if ok]
    assert all(r["source"] == "pseudo" and r["completion"] == t.solution(next(e for e in examples
                                                                               if e.id == r["example_id"]))
               for r in rows)
    assert [lb["accepted"] for lb in labels] == accepted
    report = json.loads((r1 / "data.json").read_text())["pseudo_labels"]
    assert report["precision"] == 1.0 and report["coverage"] == pytest.approx(sum(accepted) / 6)


def test_easy_to_hard_moves_the_frontier_with_replay_and_stops_when_out_of_splits(tiny_random_model_dir,
                                                                                   tmp_path):
    t = task()
    cfg = config(method="easy-to-hard", rounds=3, k=4, train_limit=4, eval_limit=2, max_steps=1,
                     batch_size=8, difficulty_splits=("terms=6", "terms=7"), patience=None, replay=0.5)
    summary = run_loop(cfg, t, tiny_random_model_dir, tmp_path / "run", make_backend=lambda p: scripted(t),
                       log=lambda m: None)
    run = tmp_path / "run"
    assert summary["rounds_done"] == 2 and "ran out of difficulty splits" in summary["stopped"]
    for r, split in ((1, "terms=6"), (2, "terms=7")):
        data = json.loads((run / f"round-{r}/data.json").read_text())
        rows = read_jsonl(run / f"round-{r}/rows.jsonl")
        new = [x for x in rows if x["source"] == "pseudo"]
        # pseudo-labels come from the training pool at that difficulty, never from the evaluated split
        assert (data["split"] == f"train:{split}" and data["moved_frontier"]
                and data["new_rows"] == len(new) > 0)
        assert data["pool_disjoint"] is True
        assert len(rows) - len(new) == -(-len(new) // 2)  # ceil(0.5 x new) replayed rows
        traces = read_jsonl(run / f"round-{r}/traces.jsonl")
        assert all(len(tr["steps"][0]["completions"]) == 4 for tr in traces)
        assert {x["example_id"] for x in new} <= {e.id for e in t.examples(f"train:{split}")}
        evaluated = {tuple(e.meta["operands"]) for e in t.examples(split)}
        assert not evaluated & {tuple(e.meta["operands"]) for e in t.examples(f"train:{split}")}
    sources = {x["source"] for x in read_jsonl(run / "round-2/rows.jsonl")}
    assert sources <= {"pseudo", "replay", "replay-gold"}


def test_rest_em_restarts_from_base_and_patience_stops(tiny_random_model_dir, tmp_path):
    t = task()
    cfg = config(method="rest-em", rounds=4, k=2, train_limit=4, eval_limit=3, max_steps=1, batch_size=8,
                     patience=2)
    summary = run_loop(cfg, t, tiny_random_model_dir, tmp_path / "run", make_backend=lambda p: scripted(t),
                       log=lambda m: None)
    # the scripted generator's accuracy never changes: rounds 1 and 2 do not beat round 0 -> stop before 3
    assert summary["rounds_done"] == 2 and "not improved" in summary["stopped"]
    assert summary["best_round"] == 0
    for r in (1, 2):
        assert json.loads((tmp_path / "run" / f"round-{r}/train.json").read_text())["start_round"] == 0


def test_arms_share_a_run_id_by_scope_and_reuse_one_start_evaluation(tiny_random_model_dir, tmp_path):
    from selfimprove.store.runs import RunStore

    t, store = task(), RunStore(tmp_path / "runs.db")
    run_id = store.create_run("demo", {})
    calls: list[int] = []

    counting = counting_backend(t, calls)

    cfg = config(method="lmsi", rounds=1, k=4, train_limit=6, eval_limit=3, max_steps=1, batch_size=4)
    common = {"store": store, "run_id": run_id, "make_backend": counting, "log": lambda m: None}
    run_loop(cfg, t, tiny_random_model_dir, tmp_path / "a", scope="a", **common)
    first = len(calls)
    run_loop(cfg.replace(method="no-filter"), t, tiny_random_model_dir, tmp_path / "b", scope="b",
             reuse_start=tmp_path / "a", **common)
    # b generated once for round 1 and evaluated round 1 only: its round 0 was copied, not recomputed
    assert len(calls) - first == first - 1
    assert ((tmp_path / "b/round-0/eval-dev.jsonl").read_text()
            == (tmp_path / "a/round-0/eval-dev.jsonl").read_text())
    assert json.loads((tmp_path / "b/round-0/metrics.json").read_text())["reused_from"] == str(tmp_path / "a")
    scopes = set(store.scopes(run_id))
    for arm in ("a", "b"):  # each arm's traces under its own scope, none lost to the other's
        assert {f"{arm}/round-0/eval/dev", f"{arm}/round-1/generate", f"{arm}/round-1/eval/dev"} <= scopes
        assert len(store.traces(run_id, f"{arm}/round-1/generate")) == 6
    # a run evaluated differently is not reused
    run_loop(cfg.replace(eval_limit=2), t, tiny_random_model_dir, tmp_path / "c", reuse_start=tmp_path / "a",
             make_backend=lambda p: scripted(t), log=lambda m: None)
    assert "reused_from" not in json.loads((tmp_path / "c/round-0/metrics.json").read_text())


def test_arms_from_one_start_draw_their_round_1_samples_once(tiny_random_model_dir, tmp_path):
    from selfimprove.store.runs import MemoryCache

    cfg = config(method="lmsi", rounds=1, **SMALL)
    shared, t = MemoryCache(), task()
    run_loop(cfg, t, tiny_random_model_dir, tmp_path / "lmsi", log=lambda m: None, shared_samples=shared)
    assert shared.hits == 0 and len(shared.data) == 4 * 2  # 4 problems x 2 samples, every one kept
    run_loop(cfg.replace(method="star"), t, tiny_random_model_dir, tmp_path / "star", log=lambda m: None,
             shared_samples=shared)
    assert shared.hits == 8  # star's samples came from lmsi's draw
    run_loop(cfg.replace(method="star"), t, tiny_random_model_dir, tmp_path / "alone", log=lambda m: None)

    def samples(run):
        return [[(c["text"], c["token_logprobs"]) for c in tr["steps"][0]["completions"]]
                for tr in read_jsonl(run / "round-1/traces.jsonl")]

    # what the shared draw gave star is what star draws on its own: same texts, same log-probabilities
    alone, shared_star = samples(tmp_path / "alone"), samples(tmp_path / "star")
    assert [[c[0] for c in row] for row in alone] == [[c[0] for c in row] for row in shared_star]
    assert all(a[1] == pytest.approx(b[1], abs=1e-5)
               for ra, rb in zip(alone, shared_star) for a, b in zip(ra, rb))
    rows = [(tmp_path / run / "round-1/rows.jsonl").read_text() for run in ("alone", "star")]
    assert rows[0] == rows[1]
    # another seed draws other samples: nothing of the shared draw is read
    run_loop(cfg.replace(method="star", seed=5), t, tiny_random_model_dir, tmp_path / "seed5",
             log=lambda m: None, shared_samples=shared)
    assert shared.hits == 8 and json.loads((tmp_path / "seed5/round-1/generate.json").read_text()
                                           )["shared_prompts"] == 0


def test_easy_to_hard_without_a_training_pool_says_it_labels_the_evaluated_split(
        tiny_random_model_dir, tmp_path):
    class NoPool(ArithmeticTask):
        def pool_split(self, split):
            return None

    t, logged = NoPool(n_train=12, n_dev=6, n_test=6), []
    cfg = config(method="easy-to-hard", rounds=1, k=4, train_limit=4, eval_limit=2, max_steps=1,
                     batch_size=8, difficulty_splits=("terms=6",), patience=None)
    run_loop(cfg, t, tiny_random_model_dir, tmp_path / "run", make_backend=lambda p: scripted(t),
             log=logged.append)
    data = json.loads((tmp_path / "run/round-1/data.json").read_text())
    assert data["split"] == "terms=6" and data["pool_disjoint"] is False
    assert any("no training pool" in m for m in logged)


def test_arithmetic_pool_split_is_disjoint_from_every_held_out_split():
    t = ArithmeticTask(terms=(2, 3), digits=(1, 1))  # a small problem space, where collisions would happen
    assert t.pool_split("test-hard") == t.pool_split("terms=4") == "train:terms=4"
    assert t.pool_split("dev") is None and t.pool_split("train") is None
    pool = {tuple(e.meta["operands"]) for e in t.examples("train:terms=4")}
    held = {tuple(e.meta["operands"]) for s in ("dev", "test", "test-hard", "terms=4") for e in t.examples(s)}
    assert len(pool) == 1000 and not pool & held


def test_round_0_uses_greedy_traces_given_for_exactly_its_examples(tiny_random_model_dir, tmp_path):
    """The demo's inference table decodes dev greedily; round 0 takes those traces instead of decoding dev
    again, and only when they are the evaluated examples, in order."""
    from selfimprove.strategies.base import score_traces
    from selfimprove.strategies.sample import Greedy

    t, calls = task(), []

    counting = counting_backend(t, calls)

    cfg = config(method="no-filter", rounds=1, eval_limit=3, eval_splits=("test",), max_tokens=20,
                 train_limit=2, max_steps=1, batch_size=2)
    dev = t.examples("dev")[:3]
    given = score_traces(t, dev, Greedy(max_tokens=20).run(scripted(t), t, dev))
    given = [g.replace(info={**g.info, "from": "demo"}) for g in given]
    run_loop(cfg, t, tiny_random_model_dir, tmp_path / "a", make_backend=counting, log=lambda m: None,
             start_greedy={"dev": given})
    assert calls[:2] == [3, 2]  # round 0: test decoded, dev taken as given; then round 1's 2 problems
    assert [tr.info.get("from") for tr in eval_traces(tmp_path / "a", 0, "dev")] == ["demo"] * 3
    calls.clear()  # traces of other examples (or another order) are not used
    run_loop(cfg, t, tiny_random_model_dir, tmp_path / "b", make_backend=counting, log=lambda m: None,
             start_greedy={"dev": given[::-1]})
    assert calls[:3] == [3, 3, 2]
    assert all("from" not in tr.info for tr in eval_traces(tmp_path / "b", 0, "dev"))
