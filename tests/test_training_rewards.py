"""The GRPO rewards on hand-computed groups: gold, majority (TTRL) with its skip rule and guards, format,
weighted sums, and the TRL adapter's grouping and truncation rule."""

from __future__ import annotations

import pytest

from selfimprove.records import Example
from selfimprove.training.rewards import (
    GoldReward,
    MajorityReward,
    RestrainReward,
    SelfJudgeReward,
    Weighted,
    advantage_offsets,
    as_trl,
    parse_reward,
)


class AnswerTask:
    """A task whose completion is 'A=<answer>' (anything else is unparseable); answers compare as strings."""

    def extract_many(self, texts):
        return [t[2:] if t.startswith("A=") and len(t) > 2 else None for t in texts]

    def equivalent(self, a, b):
        return a is not None and a == b

    def check(self, example, answer):
        return None if answer is None else answer == example.answer

    def prompt(self, example):
        return f"Q: {example.question}"

    def formats(self):
        from selfimprove.prompts import task_formats

        return task_formats(self)


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


def test_every_reward_reports_gold_guards_it_never_uses():
    r = MajorityReward()
    r.score(TASK, E, ["3", "3", "3", "2"])  # a confidently wrong majority: 3 of 4 votes on "3"
    r.score(TASK, E, ["2", "4", None, None])  # majority "2" (first of the tied), right, 1 of 4 votes
    s = r.stats()
    assert s["majority_wrong_share"] == 0.5 and s["confident_wrong_share"] == 0.5
    # group 1: the one right sample "2" gets 0, the three wrong get 1 -> every (right, wrong) pair misordered;
    # group 2: right "2" gets 1, "4" and the two None get 0 -> 3 pairs ordered right
    assert s["pairs"] == 6 and s["pair_accuracy"] == pytest.approx(3 / 6)
    assert s["gold_accuracy"] == pytest.approx(2 / 8) and s["distinct_per_group"] == 2.0


def test_restrain_rewards_vote_shares_and_penalises_low_agreement_prompts():
    r = RestrainReward(min_share=0.5, penalty=0.7)
    assert r.score(TASK, E, ["2", "2", "3", None]) == [0.5, 0.5, 0.25, 0.0]  # shares of all 4 samples
    e2 = Example(id="e2", question="2+2", answer="4")
    assert r.score(TASK, e2, ["1", "4", "5", None]) == [0.0] * 4  # top share 1/4 < 0.5: penalised
    hook = advantage_offsets(Weighted([(1.0, r), (0.1, GoldReward())]))
    assert hook(["e1", "e1", "e2", "e2"]) == [None, None, -0.7, -0.7]  # the trainer imposes -penalty
    assert hook(["e2"]) == [None]  # asked once per batch: cleared after
    s = r.stats()
    assert s["penalised"] == 1 and s["voted"] == 1 and s["penalised_share"] == 0.5
    assert advantage_offsets(GoldReward()) is None
    with pytest.raises(ValueError, match="penalty"):
        RestrainReward(penalty=-1)


def test_self_judge_reads_p_true_of_the_policys_own_verify_prompt():
    from selfimprove.backends.scripted import ScriptedBackend

    def ll(prompt, continuation):  # the judge believes exactly the completions that say A=2
        says_yes = continuation.strip().lower().startswith("y")
        return -0.1 if says_yes == ("A=2" in prompt) else -5.0

    backend = ScriptedBackend(ll=ll)
    r = SelfJudgeReward()
    with pytest.raises(RuntimeError, match="bind"):
        r.score(TASK, E, ["2"], ["A=2"])
    r.bind(backend)
    out = r.score(TASK, E, ["2", "3", None], ["A=2", "A=3", "junk"])
    assert out[0] > 0.99 and out[1] < 0.01 and out[2] == 0.0  # unparseable: 0, never judged
    judged = {p for p, _ in backend.scored}
    assert len(judged) == 2 and all("Q: 1+1" in p for p in judged)  # the task's verify prompt of each text
    s = r.stats()
    assert not s["reads_gold"] and s["judged"] == 2 and s["unjudged"] == 0 and s["reward_accuracy"] == 1.0
    assert parse_reward("self-judge+0.1*format").reads_gold is False
    assert parse_reward("0.5*self-judge+gold").reads_gold is True


def test_grpo_method_reads_gold_exactly_when_its_reward_does():
    from selfimprove.training.methods import get_method

    assert get_method("grpo", reward="gold").reads_gold
    assert get_method("grpo", reward="majority+0.1*gold").reads_gold
    for spec in ("majority", "restrain", "self-judge", "self-judge+0.1*format"):
        assert not get_method("grpo", reward=spec).reads_gold, spec


def test_a_separate_voting_pool_labels_the_prompt_instead_of_the_group():
    r = MajorityReward(min_share=0.5)
    r.use_pool({"e1": ("2", 0.75)})  # the pool (say 8 samples) voted "2" with 6 votes
    assert r.score(TASK, E, ["3", "3", "3", "2"]) == [0.0, 0.0, 0.0, 1.0]  # the group's own "3" is outvoted
    e2 = Example(id="e2", question="2+2", answer="4")
    assert r.score(TASK, e2, ["4", "4", "5", None]) == [1.0, 1.0, 0.0, 0.0]  # not in the pool: group votes
    r.use_pool({"e1": ("2", 0.25)})
    assert r.score(TASK, E, ["2", "2"]) == [0.0, 0.0]  # the pool's share is under min_share: skipped
    assert r.stats()["pool_labelled"] == 2 and r.stats()["skipped"] == 1
