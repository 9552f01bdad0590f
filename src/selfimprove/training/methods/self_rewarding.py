"""Self-Rewarding — "Self-Rewarding Language Models" (Yuan et al. 2024, arXiv:2401.10020), with the judge
pairs of "Meta-Rewarding Language Models: Self-Improving Alignment with LLM-as-a-Meta-Judge" (Wu et al. 2024,
arXiv:2407.19594).

Each round: ``n`` samples per training example from the current model, each judged by the same model
(``judge``: ptrue — P(yes) in the task's verify format — rubric, verbal, checklist or pairwise); the highest-
vs the lowest-scored sample becomes a DPO pair (ties and pools with fewer than two scored samples are skipped
and counted). With ``meta_judge`` the model also writes two rubric judgements of each pool's top sample and
compares them as a meta-judge (both orders); the preferred judgement is chosen — pairs that train the judge.
DPO continues from the previous round's model; the judge improves with the actor.

Not covered: the paper's instruction-following EFT seed data, training the judge on its own gold verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...records import Example, SamplingParams, Step, Trace, Verdict
from ...strategies.base import score_traces, spent
from ..method import Built, Method, pair_report, sample, seed_of, voted_traces
from ..preferences import META_JUDGE, SELF_JUDGE, Provenance, meta_judge_pairs, self_rewarding_pairs

JUDGES = ("ptrue", "verbal", "rubric", "checklist", "pairwise")
"""The self-judges (``strategies.best_of_n.self_verifier``)."""


@dataclass(frozen=True)
class SelfRewarding(Method):
    """DPO on the model's own best- vs worst-judged samples (+ Meta-Rewarding judge pairs)."""

    name = "self-rewarding"
    paper = "Self-Rewarding Language Models, arXiv:2401.10020"
    objective = "dpo"
    guarded = True

    judge: str = "ptrue"
    """Self-judge: ptrue, verbal, rubric, checklist or pairwise (the guards probe it too)."""
    meta_judge: bool = False
    """Add Meta-Rewarding judge pairs (needs a judge that writes judgements: rubric)."""
    min_gap: float = 0.0
    """A pair needs its judge scores to differ by more than this."""

    def validate(self, cfg) -> None:
        if self.judge not in JUDGES:
            raise ValueError(f"{self.name}: judge must be one of {', '.join(JUDGES)}, got {self.judge!r}")
        if self.meta_judge and self.judge != "rubric":
            raise ValueError(f"{self.name}: meta_judge needs judge='rubric' (a judge that writes its "
                             f"judgements)")

    def guard_judge(self) -> str:
        return self.judge

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        task = loop.task
        traces = score_traces(task, examples, voted_traces(self.name, task, examples,
                                                           sample(backend, task, examples, loop.cfg, r)))
        traces = judge_samples(backend, task, examples, traces, self.judge)
        if self.meta_judge:
            traces = meta_judge(backend, task, examples, traces, loop.cfg, seed=seed_of(loop.cfg, r) + 700)
        return traces

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        prov = Provenance(r, model=str(loop.path(r - 1)), seed=seed_of(loop.cfg, r))
        pairs, stats = self_rewarding_pairs(traces, judge=self.judge, prov=prov, min_gap=self.min_gap,
                                            suffix=loop.cfg.target_suffix)
        if self.meta_judge:
            meta, stats["meta"] = meta_judge_pairs(traces, prov=prov)
            pairs += meta
        return Built(pairs=pairs, stats=pair_report(self, loop, r, traces, examples, stats, pairs))


def judge_samples(backend, task, examples: list[Example], traces: list[Trace], judge_name: str
                  ) -> list[Trace]:
    """Add the self-judge's verdict on every sample (one ``self-judge`` step; failed or empty samples get an
    undecided verdict) and the judge's own steps, with their token costs."""
    from ...strategies.best_of_n import self_verifier

    judge = self_verifier(judge_name, backend, task)
    gens = [t.steps[0] for t in traces]
    keep = [[j for j, c in enumerate(g.completions) if c.ok and c.text] for g in gens]
    judged = judge.assess(examples, [[g.completions[j].text for j in ks] for g, ks in zip(gens, keep)])
    out = []
    for t, g, ks, vs, steps in zip(traces, gens, keep, judged.verdicts, judged.steps):
        unjudged = Verdict(score=None, correct=None, reason="not judged: failed or empty")
        verdicts = [unjudged] * len(g.completions)
        for j, v in zip(ks, vs):
            verdicts[j] = v
        judged_step = Step(kind=SELF_JUDGE, verdicts=tuple(verdicts), info={"judge": judge_name})
        all_steps = (*t.steps, *steps, judged_step)
        out.append(t.replace(steps=all_steps, **spent(all_steps)))
    return out


def meta_judge(backend, task, examples: list[Example], traces: list[Trace], cfg, seed: int) -> list[Trace]:
    """Meta-Rewarding: two sampled rubric judgements of each pool's top-scored sample, compared by the model
    (pairwise, both orders); one ``meta-judge`` step per example."""
    from ...prompts import RUBRIC
    from ...verifiers.judge import PairwiseJudge

    prompts = []
    for e, t in zip(examples, traces):
        gen, judge = t.steps[0], next(s for s in t.steps if s.kind == SELF_JUDGE)
        scored = [(v.score, j) for j, v in enumerate(judge.verdicts) if v.score is not None]
        text = gen.completions[max(scored)[1]].text if scored else gen.completions[0].text
        prompts.append(RUBRIC.format(question=e.question, response=text.strip()))
    outs = backend.generate(prompts, SamplingParams(n=2, temperature=cfg.temperature, max_tokens=256,
                                                    seed=seed))
    results, duels = PairwiseJudge(backend, task).compare(
        [Example(e.id, p) for e, p in zip(examples, prompts)], [o[0].text for o in outs],
        [o[1].text for o in outs])
    out = []
    for t, p, o, res, duel in zip(traces, prompts, outs, results, duels):
        step = Step(kind=META_JUDGE, prompt=p, completions=tuple(o),
                    info={"prompt": p, "judgements": [o[0].text, o[1].text], "preferred": res.preferred,
                          "consistent": res.consistent, "votes": list(res.votes)})
        steps = (*t.steps, step, *duel)
        out.append(t.replace(steps=steps, **spent(steps)))
    return out
