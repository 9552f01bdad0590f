"""Data builders on hand-made traces: the exact rows STaR / LMSI / no-filter keep, and the config checks."""

from __future__ import annotations

import pytest

from selfimprove.records import Completion, Step, Trace, Verdict
from selfimprove.training.config import LoopConfig
from selfimprove.training.data import (
    PseudoLabel,
    SFTRow,
    correct_rows,
    greedy_rows,
    label_precision,
    majority_rows,
    row_stats,
)

OK, NO = Verdict(1.0, True, "match"), Verdict(0.0, False, "mismatch")
UNK = Verdict(None, None, "unparseable")


def comp(text: str, finish: str = "stop") -> Completion:
    return Completion(text=text, finish_reason=finish)


def gen(prompt: str, texts, answers, verdicts=(), kind="generate", **info) -> Step:
    completions = tuple(t if isinstance(t, Completion) else comp(t) for t in texts)
    return Step(kind=kind, prompt=prompt, completions=completions, answers=tuple(answers),
                verdicts=tuple(verdicts), info=info)


def test_star_keeps_correct_samples_and_rationalisations_without_the_hint():
    traces = [
        Trace("e1", "star", steps=(gen("p1:", [" x #5", " y #6", " x #5", comp(" z #5", "length")],
                                       ["5", "6", "5", "5"], [OK, NO, OK, OK]),)),
        Trace("e2", "star", steps=(gen("p2:", [" a #1", " b"], ["1", None], [NO, UNK]),
                                   gen("p2 #7:", [" r #7"], ["7"], [OK], kind="rationalise",
                                       train_prompt="p2:"))),
        Trace("e3", "star", steps=(gen("p3:", [" c #2"], ["2"], [NO]),
                                   gen("p3 #9:", [" w #8"], ["8"], [NO], kind="rationalise",
                                       train_prompt="p3:"))),
    ]
    rows = correct_rows(traces, round_idx=2)
    # e1: the duplicate " x #5" is deduplicated, the truncated " z #5" is not a target; e2: the hinted
    # completion is trained under the plain prompt; e3: a wrong rationalisation is dropped.
    assert rows == [SFTRow("p1:", " x #5", "e1", "sample", "5", 2),
                    SFTRow("p2:", " r #7", "e2", "rationalised", "7", 2)]
    assert correct_rows(traces[:1], dedupe=False) == [SFTRow("p1:", " x #5", "e1", "sample", "5", 0)] * 2
    stats = row_stats(traces, rows)
    assert stats["samples"] == 9 and stats["truncated"] == 1 and stats["examples_with_rows"] == 2
    assert stats["rows_by_source"] == {"sample": 1, "rationalised": 1}


def test_lmsi_keeps_majority_agreeing_samples_above_the_threshold_without_gold():
    eq = lambda a, b: a is not None and b is not None and int(a) == int(b)
    traces = [
        # 2 of 4 say 5 (share 0.5 >= 0.5): keep the two distinct agreeing texts ("05" is equivalent to "5")
        Trace("e1", "lmsi", steps=(gen("p1:", [" a #5", " b #05", " c #6", " d"], ["5", "05", "6", None]),)),
        # 1 of 4 (share 0.25 < 0.5): label computed, not accepted, nothing kept
        Trace("e2", "lmsi", steps=(gen("p2:", [" a #1", " b", " c", " d"], ["1", None, None, None]),)),
        # no sample parses: no label
        Trace("e3", "lmsi", steps=(gen("p3:", [" x", " y"], [None, None]),)),
    ]
    rows, labels = majority_rows(traces, eq, threshold=0.5, round_idx=1)
    assert rows == [SFTRow("p1:", " a #5", "e1", "pseudo", "5", 1),
                    SFTRow("p1:", " b #05", "e1", "pseudo", "05", 1)]
    assert labels == [PseudoLabel("e1", "5", 2, 3, 4, True, kept=2), PseudoLabel("e2", "1", 1, 1, 4, False),
                      PseudoLabel("e3", None, 0, 0, 2, False)]
    assert labels[0].share == 0.5
    # the per-completion filter and the per-example cap
    rows, _ = majority_rows(traces, eq, threshold=0.5, keep=lambda i, c, lab: "b" not in c.text)
    assert [r.completion for r in rows] == [" a #5"]
    rows, _ = majority_rows(traces, eq, threshold=0.5, max_per_example=1)
    assert len(rows) == 1
    # precision is reported against gold, which the builder never saw
    gold = {"e1": "5", "e2": "2", "e3": "3"}
    report = label_precision(labels, lambda i, a: None if a is None else int(a) == int(gold[i]))
    assert (report["accepted"] == 1 and report["precision"] == 1.0
            and report["coverage"] == pytest.approx(1 / 3))
    assert report["majority_accuracy"] == 0.5  # e1 right, e2 wrong, e3 undecidable (no label)


def test_no_filter_trains_on_the_greedy_answer_whatever_it_is():
    traces = [
        Trace("e1", "no-filter", steps=(gen("p1:", [" wrong #9"], ["9"]),)),
        Trace("e2", "no-filter", steps=(gen("p2:", [" garbage"], [None]),)),
        Trace("e3", "no-filter", steps=(gen("p3:", [comp(" cut off", "length")], [None]),)),
        Trace("e4", "no-filter",
              steps=(gen("p4:", [Completion("", finish_reason="error", error="x")], [None]),)),
    ]
    assert greedy_rows(traces, suffix="\n") == [
        SFTRow("p1:", " wrong #9\n", "e1", "greedy", "9"), SFTRow("p2:", " garbage\n", "e2", "greedy", None),
        SFTRow("p3:", " cut off\n", "e3", "greedy", None)]


def test_rows_round_trip_through_json():
    row = SFTRow("p:", " c", "e", "pseudo", "3", 2)
    assert SFTRow.from_json(row.to_json()) == row and row.trl() == {"prompt": "p:", "completion": " c"}
    label = PseudoLabel("e", "3", 2, 3, 4, True, 2)
    assert PseudoLabel.from_json(label.to_json()) == label


@pytest.mark.parametrize("values, needle", [
    ({"method": "dpo"}, "unknown method 'dpo'"), ({"n": 0}, "n must be >= 1"), ({"k": 0}, "n must be >= 1"),
    ({"method": "lmsi", "threshold": 1.5}, "threshold must be in [0, 1]"), ({"lr": 0}, "lr must be > 0"),
    ({"method": "easy-to-hard"}, "difficulty_splits"), ({"patience": -1}, "patience must be"),
    ({"method": "star", "threshold": 0.5}, "unknown setting 'threshold' for method star"),
    ({"sft": {"trl_args": {"learning_rate": 1.0}}}, "trl_args may not set learning_rate"),
])
def test_loop_config_validation_says_how_to_fix(values, needle):
    with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        LoopConfig.from_dict(values)


def test_loop_config_round_trips_and_takes_the_old_flat_names():
    from selfimprove.training.methods import EasyToHard

    cfg = LoopConfig(method=EasyToHard(difficulty_splits=["terms=6", "terms=7"]), eval_splits="test-hard")
    assert cfg.method.difficulty_splits == ("terms=6", "terms=7") and cfg.eval_splits == ("test-hard",)
    assert LoopConfig.from_dict(cfg.to_dict()) == cfg
    old = LoopConfig.from_dict({"method": "scpo", "k": 4, "lr": 1e-4, "dpo_lr": 2e-6, "beta": 0.2,
                                "max_steps": 7,
                                "guard_k": 3, "threshold": 0.3, "patience": None, "loss_type": "sigmoid"})
    got = (old.n, old.sft.lr, old.dpo.lr, old.dpo.beta, old.guards.n, old.method.threshold, old.patience)
    assert got == (4, 1e-4, 2e-6, 0.2, 3, 0.3, 0)
    assert old.sft.max_steps == old.dpo.max_steps == 7 and old.dpo.loss_type == ("sigmoid",)


def test_a_run_saved_before_settings_were_nested_still_resumes():
    """Older runs stored every setting of every method flat; resuming reads what the method has."""
    saved = {"method": "star", "rounds": 2, "k": 8, "threshold": 0.5, "rationalize": False,
             "rationalize_k": 2,
             "difficulty_splits": [], "replay": 1.0, "lr": 3e-5, "epochs": 2.0, "max_steps": 80,
             "patience": None,
             "eval_splits": ["test"], "device": "auto"}
    with pytest.raises(ValueError, match="unknown setting"):
        LoopConfig.from_dict(saved)
    cfg = LoopConfig.from_dict(saved, strict=False)
    assert (cfg.method.name, cfg.method.rationalize, cfg.method.rationalize_n, cfg.n, cfg.patience) == (
        "star", False, 2, 8, 0)
    assert cfg.sft.max_steps == 80 and cfg.eval_splits == ("test",)


def test_one_default_per_setting():
    """The trainer budget is declared once: SFT and DPO calls, direct or in a loop, share the same
    defaults."""
    from selfimprove.training.settings import DPOSettings, SFTSettings

    cfg = LoopConfig()
    for field in ("epochs", "max_steps", "batch_size", "max_length"):
        assert getattr(cfg.sft, field) == getattr(cfg.dpo, field) == getattr(SFTSettings(), field) == getattr(
            DPOSettings(), field)
