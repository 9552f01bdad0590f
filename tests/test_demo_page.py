"""The demo's HTML page: from the arms' round metrics and the paired tests to one self-contained file."""

from __future__ import annotations

import json

from selfimprove.cli.demo_report import write_page


def _round(r: int, accs: dict) -> dict:
    return {"round": r, "eval": {s: {"accuracy": a, "ci95": [a - 0.05, a + 0.05], "n": 20, "unparsed": 1}
                                 for s, a in accs.items()}, "data": {"rows": 10 * r}}


def test_the_page_has_the_plot_the_rounds_and_the_paired_tests(tmp_path):
    for arm, accs in (("lmsi", (0.50, 0.61)), ("no-filter", (0.50, 0.55))):
        for r, a in enumerate(accs):
            d = tmp_path / arm / f"round-{r}"
            d.mkdir(parents=True)
            (d / "metrics.json").write_text(json.dumps(_round(r, {"dev": a, "test": a - 0.02})))
    tests = {"lmsi r1 vs r0": {"mcnemar": {"acc_a": 0.48, "acc_b": 0.59, "diff": 0.11, "a_only": 2,
                                           "b_only": 9,
                                           "p_value": 0.0654},
                               "bootstrap": {"ci_low": -0.01, "ci_high": 0.22}, "verdict": "not significant"}}
    inference = {
        "greedy": {"accuracy": 0.5, "ci95": [0.4, 0.6], "unparsed": 1, "n": 20, "tokens_per_example": 40}}
    page = write_page(tmp_path / "demo.html", tmp_path, {"lmsi": {}, "no-filter": {}}, ("dev", "test"), tests,
                      title="demo <run>", inference=inference).read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 1  # the figure, embedded
    assert "lmsi r1 vs r0" in page and "+11.0" in page and "0.0654" in page and "not significant" in page
    assert "61.0" in page and "55.0" in page  # each arm's round-1 dev accuracy in the table
    assert "demo &lt;run&gt;" in page  # escaped
