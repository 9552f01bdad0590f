"""The GRPO rewards on hand-computed groups: gold, majority (TTRL) with its skip rule and guards, format,
weighted sums, and the TRL adapter's grouping and truncation rule."""

from __future__ import annotations

import pytest

from selfimprove.records import Example
from selfimprove.training.rewards import GoldReward, MajorityReward, Weighted, as_trl, parse_reward


class AnswerTask:
    """A task whose completion is 'A=<answer>' (anything else is unparseable); answers compare as strings."""

    def extract_many(self, texts):
        return [t[2:] if t.startswith("A=") and len(t) > 2 else None for t in texts]

    def equivalent(self, a, b):
        return a is not None and a == b

    def check(self, example, answer):
        return None if answer is None else answer == example.answer


TASK = AnswerTask()
E = Example(id="e1", question="1+1", answer="2")


def test_gold_rewards_correct_answers_and_counts_unparseable():
    r = GoldReward()
    assert r.score(TASK, E, ["2", "3", None, "2"]) == [1.0, 0.0, 0.0, 1.0]
    s = r.stats()
    assert s["reads_gold"] and s["unparsed"] == 1 and s["completions"] == 4 and s["mean_reward"] == 0.5


def test_majority_rewards_agreement_and_reports_a_wrong_majority():
    r = MajorityReward()
    # majority "3" (2 of 4 votes, ahead of "2" which has 1): agreeing with it is rewarded, gold is not read
    assert r.score(TASK, E, ["3", "2", "3", None]) == [1.0, 0.0, 1.0, 0.0]
    s = r.stats()
    assert not s["reads_gold"]
    assert s["majority_wrong_share"] == 1.0 and s["voted"] == 1 and s["skipped"] == 0
    # reward == gold reward on: "3"->1 vs wrong (no), "2"->0 vs right (no), "3" (no), None->0 vs wrong (yes)
    assert s["reward_accuracy"] == pytest.approx(1 / 4)
    assert s["distinct_per_group"] == 2 and s["unparsed"] == 1


def test_majority_below_min_share_skips_the_prompt():
    r = MajorityReward(min_share=0.6)
    assert r.score(TASK, E, ["2", "2", "3", "4"]) == [0.0] * 4  # 2 of 4 votes = 0.5 < 0.6
    assert r.score(TASK, E, ["2", "2", "2", None]) == [1.0, 1.0, 1.0, 0.0]  # 3 of 4 = 0.75
    assert r.score(TASK, E, [None, None]) == [0.0, 0.0]  # nothing parseable: no label, skipped
    s = r.stats()
    assert s["skipped"] == 2 and s["voted"] == 1 and s["skipped_share"] == pytest.approx(2 / 3)
    assert s["majority_wrong_share"] == 0.0 and s["unparsed"] == 3
    with pytest.raises(ValueError, match="min_share"):
        MajorityReward(min_share=1.5)


def test_weighted_sum_and_the_spec_parser():
    r = parse_reward("gold+0.5*format")
    assert isinstance(r, Weighted) and r.reads_gold
    assert r.score(TASK, E, ["2", "3", None]) == [1.5, 0.5, 0.0]
    assert r.stats()["parts"][1]["weight"] == 0.5
    assert isinstance(parse_reward("majority", min_share=0.3), MajorityReward)
    with pytest.raises(ValueError, match="unknown reward"):
        parse_reward("gold+judge")


def test_trl_adapter_groups_by_id_and_zeroes_truncated_completions():
    e2 = Example(id="e2", question="2+2", answer="4")
    r = MajorityReward()
    fn = as_trl(r, TASK, [E, e2], max_tokens=5)
    completions = ["A=2", "A=2", "A=22", "A=4", "A=4", "junk"]
    ids = [[0] * 3, [0] * 5, [0] * 4, [0] * 3, [0] * 3, [0] * 3]  # the second hit the 5-token cap: truncated
    out = fn(prompts=["p"] * 6, completions=completions, completion_ids=ids, id=["e1"] * 3 + ["e2"] * 3)
    # e1: answers 2, None (truncated), 22 -> majority "2" (first of the tied) -> [1, 0, 0]
    # e2: answers 4, 4, None -> majority "4" -> [1, 1, 0]
    assert out == [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    s = r.stats()
    assert s["prompts"] == 2 and s["unparsed"] == 2 and s["majority_wrong_share"] == 0.0
