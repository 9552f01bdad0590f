"""Best-of-n selection by the model's own verifier, and weighted best-of-n.

Sample n answers, score each with a self-verifier, keep the best (P(True) selection of "Language Models
(Mostly) Know What They Know", arXiv:2207.05221; judge-based best-of-N as in TICK/STICK, arXiv:2410.03608, and
"Self-Rewarding Language Models", arXiv:2401.10020; the selection side of the generation–verification gap,
arXiv:2412.02674, and of sharpening, arXiv:2412.01951):

- ``best-of-n``: the sample with the highest verifier score wins (ties → the earlier sample). Confidence =
  that score.
- ``weighted-best-of-n``: verifier scores are summed per distinct answer (grouped by ``task.equivalent``) and
  the answer with the largest sum wins. Confidence = its sum ÷ the sum over all scored samples.

``verifier`` names a self-verifier: ``ptrue`` (P(True)), ``verbal`` (verbalised confidence), ``rubric`` or
``judge`` (additive 5-point rubric), ``checklist`` (TICK), ``pairwise`` (round-robin in both orders),
``prm`` (a trained process reward model, ``verifier=prm:path=DIR;aggregate=last|min|product``). Only
parseable samples are sent to the verifier; the verifier's steps and tokens are recorded in the trace.
``info['scores']`` holds one score per sample (None: unparseable, truncated or unscored), ``info['selected']``
the chosen sample's index, ``info['verdicts']`` / ``info['unscored']`` the verdicts asked for and those the
verifier could not give (a judge output without a readable score). When every verdict is unscored, there is no
selection: the first sample's answer is kept (what plain sampling returns) with confidence None,
``info['selected']`` None and ``info['all_unscored']`` True, counted in the eval table — never a silent pick.

Not covered: verifiers trained on the model's own samples (V-STaR, arXiv:2402.06457; see training),
gold-answer verifiers (only the oracle strategy may read gold answers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..records import Example, Step, Trace
from .base import generate_step, make_trace
from .sample import Sample
from .weighted import weighted_vote

_NO_SELECTION = "first sample: no sample could be scored"
JUDGES = ("rubric", "judge", "pairwise")
"""The verifiers that can be read two ways (``verifiers.judge``: written judgement or score-token
probabilities)."""

def self_verifier(spec: str, backend, task, judge_method: str | None = None):
    """Build the self-verifier ``spec`` (a registered verifier name with options) for ``backend`` and
    ``task``; one that reads gold answers is refused (selection never reads gold). ``judge_method`` sets how a
    rubric or pairwise judge is read unless ``spec`` names a ``method`` itself. Inside a strategy spec a
    verifier's
    options are separated by ``;`` (``verifier=prm:path=DIR;aggregate=min``), since ``,`` separates the
    strategy's own."""
    from ..registry import build_verifier
    from ..specs import parse_spec

    spec = spec.replace(";", ",")
    name, options = parse_spec(spec, "verifier")
    if judge_method is not None and name in JUDGES and "method" not in options:
        spec = f"{spec}{',' if options else ':'}method={judge_method}"
    verifier = build_verifier(spec, backend, task)
    if verifier.uses_gold:
        raise ValueError(f"verifier '{spec}' reads gold answers; only the oracle strategy may do that")
    return verifier


@dataclass(frozen=True)
class BestOfN(Sample):
    """Sample n answers and keep the one the model's own verifier scores highest."""

    n: int = 8
    """Samples per example."""
    verifier: str = "ptrue"
    """Self-verifier (``selfimprove ls verifiers``): ptrue, verbal, rubric (= judge), checklist, pairwise
    or prm (``prm:path=DIR;aggregate=min``: options after the first separated by ';')."""
    judge_method: str = "auto"
    """How a rubric or pairwise judge is read: 'loglikelihood' (score-token probabilities), 'generate' (its
    written judgement parsed) or 'auto' (log-likelihood where the backend offers it); a ``method`` option in
    ``verifier`` wins."""
    name = "best-of-n"

    def __post_init__(self) -> None:
        super().__post_init__()
        from ..registry import entries, find
        from ..specs import parse_spec

        entry = find("verifiers", parse_spec(self.verifier.replace(";", ","), "verifier")[0])
        if entry is None or entry.load().uses_gold:
            allowed = [e.name for e in entries("verifiers") if not e.load().uses_gold]
            raise ValueError(f"verifier must be one of {', '.join(allowed)}, got {self.verifier!r}")
        if self.judge_method not in ("auto", "loglikelihood", "generate"):
            raise ValueError(
                f"judge_method must be auto, loglikelihood or generate, got {self.judge_method!r}")

    def run(self, backend, task, examples: Sequence[Example]) -> list[Trace]:
        verifier = self_verifier(self.verifier, backend, task, self.judge_method)
        pools = generate_step(backend, task, [task.prompt(e) for e in examples], self.params())
        keep = [[j for j, a in enumerate(s.answers) if a is not None] for s in pools]
        judged = verifier.assess(examples,
                                 [[s.completions[j].text for j in ks] for s, ks in zip(pools, keep)])
        traces = []
        for e, s, ks, vs, vsteps in zip(examples, pools, keep, judged.verdicts, judged.steps):
            scores: list[float | None] = [None] * len(s.answers)
            for j, v in zip(ks, vs):
                scores[j] = v.score
            winner, selected, confidence, extra = self.select(task, s.answers, scores)
            select = Step(kind="select", info={"selected": selected, "winner": winner, **extra})
            unscored = sum(v.score is None for v in vs)
            traces.append(make_trace(e, self.name, [s, *vsteps, select], initial_answer=s.answers[0],
                                     final_answer=winner, confidence=confidence, samples=len(s.completions),
                                     verifier=self.verifier, scores=scores, selected=selected,
                                     verdicts=len(vs), unscored=unscored, all_unscored=bool(vs) and
                                     unscored == len(vs)))
        return traces

    def select(self, task, answers: Sequence[str | None], scores: Sequence[float | None]
               ) -> tuple[str | None, int | None, float | None, dict]:
        """(final answer, selected sample index, confidence, extra info) from per-sample scores."""
        ranked = [j for j, x in enumerate(scores) if x is not None]
        if not ranked:
            return answers[0] if answers else None, None, None, {"fallback": _NO_SELECTION}
        best = max(ranked, key=lambda j: scores[j])  # max keeps the first of equal scores
        return answers[best], best, scores[best], {}


@dataclass(frozen=True)
class WeightedBestOfN(BestOfN):
    """Sum the verifier's scores per distinct answer; the answer with the largest sum wins."""

    name = "weighted-best-of-n"

    def select(self, task, answers, scores):
        ranked = [j for j, x in enumerate(scores) if x is not None]
        if not ranked:
            return answers[0] if answers else None, None, None, {"fallback": _NO_SELECTION}
        weights = [0.0 if x is None else x for x in scores]
        winner, w, groups = weighted_vote([a if x is not None else None for a, x in zip(answers, scores)],
                                          weights, task.equivalent)
        total = sum(weights)
        first = next(j for j in ranked if task.equivalent(answers[j], winner))
        return winner, first, (w / total if total > 0 else None), {"groups": groups}
