from selfimprove.records import Trace
from selfimprove.report.html import write_report
from selfimprove.runner import strategy_metrics
from selfimprove.store.runs import RunStore
from selfimprove.records import Example


class _Task:
    def check(self, example, answer):
        return None if answer is None else answer == example.answer


def test_report_has_every_section_and_labels_oracle(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run("eval", {"model": "m", "task": "t", "split": "test"})
    examples = [Example(id=f"e{i}", question="q", answer="1") for i in range(6)]
    greedy = [Trace(f"e{i}", "greedy", initial_answer=a, final_answer=a, correct=a == "1", initial_correct=a == "1",
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
