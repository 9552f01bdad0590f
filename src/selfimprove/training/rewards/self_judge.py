"""The self-judge reward: P(True) of the policy's own verify format on each of its completions.

The policy being trained judges its own samples: each completion goes into the task's verify prompt and the
reward is P(yes) / (P(yes) + P(no)) read from the model's next-token probabilities — the project's ``PTrue``
verifier ("Language Models (Mostly) Know What They Know", Kadavath et al. 2022, arXiv:2207.05221) through
``verifiers.choice``, never parsed from generated text. The judge is the current weights (``bind`` hands it a
backend over the very model TRL updates), so the reward moves as the policy does — the setting in which
self-judged rewards can be exploited; the gold guards of ``stats()`` show whether they are.

A completion whose answer is unparseable or truncated gets 0 without a judgement; a judgement with too little
probability on yes/no (``verifiers.choice.MIN_MASS``) has no reading: reward 0, counted as ``unjudged``.

A task whose verify format reasons first (``verify_think``) has the rationale generated greedily before the
verdict is read, as ``PTrue`` always does. Not covered: an external judge model (the guards' ``judge`` setting
is for the guard probe, not for this reward).
"""

from __future__ import annotations

from .base import Reward


class SelfJudgeReward(Reward):
    """P(True) of the policy's own verify format on each completion (0 when unparseable or unjudged)."""

    name = "self-judge"

    def __init__(self) -> None:
        super().__init__()
        self.backend = None

    def bind(self, backend) -> None:
        self.backend = backend

    def _score(self, task, example, answers, texts):
        from ...verifiers.ptrue import PTrue

        if self.backend is None:
            raise RuntimeError("the self-judge reward needs the policy: call reward.bind(backend) before "
                               "scoring")
        if texts is None:
            raise ValueError("the self-judge reward judges completion texts; score(..., texts=...) got none")
        todo = [i for i, a in enumerate(answers) if a is not None]
        out = [0.0] * len(answers)
        if not todo:
            return out
        judge = PTrue(self.backend, task, method="loglikelihood")
        verdicts = judge.assess([example], [[texts[i] for i in todo]]).verdicts[0]
        self.counts["judged"] += len(todo)
        for i, v in zip(todo, verdicts):
            if v.score is None:
                self.counts["unjudged"] += 1
            else:
                out[i] = float(v.score)
        return out

    def stats(self):
        c = self.counts
        return {**super().stats(), "judged": c["judged"], "unjudged": c["unjudged"],
                "unjudged_share": c["unjudged"] / c["judged"] if c["judged"] else None}
