from selfimprove.records import Example, Step, Trace
from selfimprove.report.html import write_report
from selfimprove.runner import strategy_metrics
from selfimprove.store.runs import RunStore


class _Task:
    def check(self, example, answer):
        return None if answer is None else answer == example.answer


def test_report_has_every_section_and_labels_oracle(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run("eval", {"model": "m", "task": "t", "split": "test"})
    examples = [Example(id=f"e{i}", question="q", answer="1") for i in range(6)]
    greedy = [Trace(f"e{i}", "greedy", initial_answer=a, final_answer=a, correct=a == "1",
                    initial_correct=a == "1",
                    prompt_tokens=10, completion_tokens=2, calls=1)
              for i, a in enumerate(["1", "1", "2", "1", None, "3"])]
    corrected = [t.replace(strategy="oracle-correct", final_answer="1", correct=True, confidence=0.9,
                           info={"oracle": True}) for t in greedy]
    for scope, traces in (("greedy", greedy), ("oracle-correct", corrected)):
        store.add_traces(run_id, scope, traces, start=0)
        store.put_metrics(run_id, scope, strategy_metrics(_Task(), examples, traces))
    text = write_report(tmp_path / "r.html", store, run_id).read_text()
    for heading in ("Strategies", "Accuracy versus cost", "Calibration", "Correction", "Paired tests"):
        assert f"<h2>{heading}" in text
    assert "oracle-correct" in text and text.count("data:image/png;base64,") == 4
    # greedy had 3/6 right; the oracle fixed the other 3 (w→c = 3, c→w = 0): McNemar p = 2·(1/2)^3 = 0.25
    assert "<td>0.2500</td>" in text and "<td>50.0</td>" in text


def test_report_counts_unreadable_reviews_as_broken_and_shows_the_gap(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run("eval", {"model": "m", "task": "t", "split": "test"})
    examples = [Example(id=f"e{i}", question="q", answer="1") for i in range(4)]
    first = ["1", "1", "2", "1"]
    # a review that answers in the wrong format: every final answer unparseable (correct None)
    review = [Trace(f"e{i}", "self-correct", initial_answer=a, final_answer=None, correct=None,
                    initial_correct=a == "1", calls=2, prompt_tokens=20) for i, a in enumerate(first)]
    pools = [("1", "2"), ("2", "1"), ("2", "2"), ("1", None)]
    scores = [[0.9, 0.1], [0.9, 0.1], [0.5, 0.5], [0.2, None]]
    best = [Trace(f"e{i}", "best-of-n", steps=(Step("generate", answers=p),), initial_answer=p[0],
                  final_answer=p[max(range(len(p)), key=lambda j: -1 if u[j] is None else u[j])],
                  confidence=max(x for x in u if x is not None), info={"scores": u}, calls=1,
                  prompt_tokens=10)
            for i, (p, u) in enumerate(zip(pools, scores))]
    best = [t.replace(correct=t.final_answer == "1", initial_correct=t.initial_answer == "1") for t in best]
    for scope, traces in (("self-correct", review), ("best-of-n", best)):
        store.add_traces(run_id, scope, traces, start=0)
        store.put_metrics(run_id, scope, strategy_metrics(_Task(), examples, traces))
    text = write_report(tmp_path / "r.html", store, run_id).read_text()
    # self-correct: 3 right answers broken (c→w), 1 wrong stays wrong, all 4 unparsed after
    assert "<td>self-correct</td><td>75.0</td><td>0.0</td><td>-75.0</td>" in text
    assert "<td>0</td><td>3</td><td>0</td><td>1</td><td>0/4</td>" in text
    # best-of-n pools: sample accuracy (1/2 + 1/2 + 0 + 1/2)/4 = 37.5 %; selected (1 + 0 + 0 + 1)/4 = 50 %
    assert "<h2>Generation–verification gap" in text
    assert "<td>best-of-n</td><td>37.5</td><td>50.0</td><td>12.5</td><td>0.200</td>" in text


def test_majority_curve_spends_k_of_K_samples_on_the_completion_tokens():
    from selfimprove.report.html import majority_curve

    m = {"n": 10, "calls": 10, "prompt_tokens": 100, "completion_tokens": 1600, "maj@1": 0.5, "maj@4": 0.7,
         "maj@16": 0.8, "pass@16": 0.95, "accuracy": 0.8}
    assert majority_curve(m) == [(10 + 160 / 16, 0.5), (10 + 160 * 4 / 16, 0.7), (10 + 160, 0.8)]
    assert majority_curve(
        {"n": 10, "calls": 10, "prompt_tokens": 1, "completion_tokens": 1, "accuracy": 0.5}) == []
    assert majority_curve({**m, "calls": 29}) == []  # an adaptive strategy: its pool is not all it spent
    assert majority_curve({**m, "verification": {}}) == []  # a verifier's tokens are in the totals


def test_a_strategy_run_at_several_budgets_gets_its_accuracy_versus_tokens_curve():
    from selfimprove.report.plots import accuracy_vs_tokens, budget_curves

    rows = {"beam:beams=4": {"accuracy": 0.8, "tokens_per_example": 400.0},
            "beam:beams=2": {"accuracy": 0.7, "tokens_per_example": 150.0},
            "greedy": {"accuracy": 0.6, "tokens_per_example": 50.0}}
    # sorted by tokens; greedy, run once, has no curve
    assert budget_curves(rows) == {"beam": [(150.0, 0.7), (400.0, 0.8)]}
    assert accuracy_vs_tokens(rows, {}).startswith(b"\x89PNG")
