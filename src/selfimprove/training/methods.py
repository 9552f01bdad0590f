"""The self-training methods: what each generates in a round and which completions it keeps.

- ``star`` — STaR (Zelikman et al. 2022; described in V-STaR, METHODS #108): k samples per example, keep
  those the gold verifier accepts; for an example with no correct sample, *rationalise*: prompt with the gold
  answer as a hint (``task.hint_prompt`` where the task has one), keep the result if correct, and train on it
  under the plain prompt. Training continues from the previous round's model.
- ``rest-em`` — ReST^EM (Singh et al. 2023, #104): the same E-step without rationalisation; the M-step
  fine-tunes the *base* model on this round's filtered data (the loop handles the restart).
- ``lmsi`` — "Large Language Models Can Self-Improve" (Huang et al. 2022, #53): no gold; pseudo-label = the
  majority answer of k samples, keep agreeing samples when the vote share reaches the threshold.
- ``easy-to-hard`` — Lee et al. 2025, "Self-Improving Transformers Overcome Easy-to-Hard and Length
  Generalization Challenges" (#331): LMSI's majority-vote labelling applied one difficulty step beyond the
  current frontier, with a length filter; replay and the frontier are handled by the loop.
- ``no-filter`` — the control: train on the model's own greedy answers.

Gold answers are read only by ``star``/``rest-em`` (their filter) and by ``score_traces`` for reporting; the
majority-vote methods' selection never sees them. Not covered: LMSI's chain-of-thought prompt mixtures and
its "direct answer" format augmentation; ReST^EM's per-problem cap tuning; STaR's few-shot rationale prompts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..records import Completion, Example, SamplingParams, Step, Trace
from ..strategies.base import generate_step, make_trace, score_traces
from .data import PseudoLabel, SFTRow, correct_rows, greedy_rows, majority_rows

METHODS = ("star", "rest-em", "lmsi", "easy-to-hard", "no-filter")
"""Method names, as ``--method`` takes them."""
USES_GOLD = {"star": True, "rest-em": True, "lmsi": False, "easy-to-hard": False, "no-filter": False}
"""Whether the method's selection reads gold answers."""
RESTARTS_FROM_BASE = {"rest-em"}
"""Methods whose every round fine-tunes the base model (the others continue from the last round)."""


def generate(method: str, backend, task, examples: Sequence[Example], cfg, round_idx: int) -> list[Trace]:
    """One round's generation for ``method``: scored traces, one per example, in order."""
    seed = cfg.seed * 1000 + round_idx
    if method == "no-filter":
        params = SamplingParams(n=1, temperature=0.0, max_tokens=cfg.max_tokens, seed=seed)
        steps = generate_step(backend, task, [task.prompt(e) for e in examples], params)
        traces = [make_trace(e, method, [s], initial_answer=s.answers[0], final_answer=s.answers[0])
                  for e, s in zip(examples, steps)]
        return score_traces(task, examples, traces)
    params = SamplingParams(n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens,
                            seed=seed)
    steps = generate_step(backend, task, [task.prompt(e) for e in examples], params)
    if USES_GOLD[method]:
        traces = _gold_filtered(method, backend, task, examples, steps, cfg, seed)
    else:
        traces = _voted(method, task, examples, steps)
    return score_traces(task, examples, traces)


def select(method: str, task, traces: Sequence[Trace], cfg, round_idx: int, examples=None
           ) -> tuple[list[SFTRow], list[PseudoLabel]]:
    """The rows ``method`` keeps from ``traces`` (and its pseudo-labels, for the voting methods)."""
    suffix = target_suffix(task, cfg)
    common = {"suffix": suffix, "round_idx": round_idx}
    if method == "no-filter":
        return greedy_rows(traces, **common), []
    if USES_GOLD[method]:
        return correct_rows(traces, max_per_example=cfg.max_per_example, **common), []
    keep = None
    if method == "easy-to-hard" and cfg.length_filter and examples is not None:
        keep = _length_filter(task, {e.id: e for e in examples})
    return majority_rows(traces, task.equivalent, threshold=cfg.threshold, keep=keep,
                         max_per_example=cfg.max_per_example, **common)


def target_suffix(task, cfg) -> str:
    """What follows a completion's text in a training target, before the EOS TRL appends. The backend cut
    the stop string off and the model ends its answer with EOS as well (the tiny model was pretrained on
    ``prompt + completion + <eos>``), so the default is nothing."""
    return cfg.target_suffix


def hint_prompt(task, example: Example) -> str:
    """The rationalisation prompt: the task's hint format (``Task.hint_prompt``)."""
    return task.hint_prompt(example)


# ---- internals --------------------------------------------------------------------------------------------


def _verified(task, examples: Sequence[Example], steps: Sequence[Step]) -> list[Step]:
    verifier = task.default_verifier()
    verdicts = verifier.verify(list(examples), [list(s.answers) for s in steps])
    return [dataclasses.replace(s, verdicts=tuple(v)) for s, v in zip(steps, verdicts)]


def _gold_filtered(method, backend, task, examples, steps, cfg, seed) -> list[Trace]:
    steps = _verified(task, examples, steps)
    hinted: dict[int, Step] = {}
    if method == "star" and cfg.rationalize:
        todo = [i for i, s in enumerate(steps)
                if examples[i].answer is not None and not any(v.correct for v in s.verdicts)]
        if todo:
            params = SamplingParams(n=cfg.rationalize_k, temperature=cfg.rationalize_temperature,
                                    top_p=cfg.top_p, max_tokens=cfg.max_tokens, seed=seed + 500)
            todo_ex = [examples[i] for i in todo]
            raw = generate_step(backend, task, [hint_prompt(task, e) for e in todo_ex], params,
                                kind="rationalise")
            raw = _verified(task, todo_ex, raw)
            for i, s in zip(todo, raw):
                hinted[i] = dataclasses.replace(s, info={**s.info, "train_prompt": task.prompt(examples[i])})
    traces = []
    for i, (e, s) in enumerate(zip(examples, steps)):
        trace_steps = [s] + ([hinted[i]] if i in hinted else [])
        n_correct = sum(bool(v.correct) for v in s.verdicts)
        traces.append(make_trace(e, method, trace_steps, initial_answer=s.answers[0],
                                 final_answer=s.answers[0], confidence=n_correct / len(s.answers),
                                 correct_samples=n_correct, rationalised=i in hinted and any(
                                     bool(v.correct) for v in hinted[i].verdicts)))
    return traces


def _voted(method, task, examples, steps) -> list[Trace]:
    from ..answers import majority

    traces = []
    for e, s in zip(examples, steps):
        winner, votes, parsed = majority(s.answers, task.equivalent)
        n = len(s.answers)
        vote = Step(kind="vote", info={"winner": winner, "votes": votes, "parsed": parsed, "n": n})
        traces.append(make_trace(e, method, [s, vote], initial_answer=s.answers[0], final_answer=winner,
                                 confidence=votes / n if n else 0.0, samples=n))
    return traces


def _length_filter(task, by_id: dict[str, Example]):
    """Lee et al.'s length filter, generically: drop truncated completions, and where the task can say how
    long a plausible answer is (``task.plausible(example, answer)``), drop implausible ones."""
    def keep(example_id: str, completion: Completion, label: str) -> bool:
        if completion.finish_reason != "stop":
            return False
        return bool(task.plausible(by_id[example_id], label))

    return keep


def round_report(method: str, task, examples: Sequence[Example], traces: Sequence[Trace],
                 labels: Sequence[PseudoLabel]) -> dict[str, Any]:
    """Method-specific numbers of one round's data: coverage, rationalisations, pseudo-label precision."""
    from .data import label_precision

    out: dict[str, Any] = {"gold_filter": USES_GOLD[method]}
    n = len(traces) or 1
    if USES_GOLD[method]:
        out["solved_by_sampling"] = sum(t.info.get("correct_samples", 0) > 0 for t in traces) / n
        out["rationalised"] = sum(bool(t.info.get("rationalised")) for t in traces)
    if labels:
        by_id = {e.id: e for e in examples}
        out["pseudo_labels"] = label_precision(labels, lambda i, a: task.check(by_id[i], a))
    if method == "no-filter":
        out["greedy_train_accuracy"] = sum(bool(t.correct) for t in traces) / n
    return out


# ---- registration (interim: until each method is one file with its own settings) --------------------------

def _register() -> None:
    from ..registry import register_method

    for name, (line, paper) in {
        "star": ("Keep gold-verified samples; rationalise unsolved problems with the answer as a hint.",
                 "STaR: Bootstrapping Reasoning With Reasoning, arXiv:2203.14465"),
        "rest-em": ("Keep gold-verified samples; every round fine-tunes the base model.",
                    ("Beyond Human Data: Scaling Self-Training for Problem-Solving with Language Models, "
                    "arXiv:2312.06585")),
        "lmsi": ("Majority-vote pseudo-labels, no gold.", "Large Language Models Can Self-Improve, arXiv:2210.11610"),
        "easy-to-hard": ("Majority-vote pseudo-labels one difficulty step beyond the frontier, length filter.",
                         ("Self-Improving Transformers Overcome Easy-to-Hard and Length Generalization "
                         "Challenges, arXiv:2502.01612")),
        "no-filter": ("Control: train on the model's own greedy answers, unfiltered.", ""),
        "self-rewarding": ("DPO on pairs ranked by the model's own judge (+ Meta-Rewarding judge pairs).",
                           "Self-Rewarding Language Models, arXiv:2401.10020"),
        "scpo": ("DPO on most- vs least-voted answers, weighted by the vote margin; no gold.",
                 "Self-Consistency Preference Optimization, arXiv:2411.04109"),
        "spin": ("DPO with the reference solution chosen over the model's own sample.",
                 ("Self-Play Fine-Tuning Converts Weak Language Models to Strong Language Models, "
                 "arXiv:2401.01335")),
        "gold-dpo": ("Control: DPO on gold-labelled (correct, incorrect) sample pairs.", ""),
        "v-star": ("STaR rounds plus a DPO-trained verifier for best-of-n.",
                   "V-STaR: Training Verifiers for Self-Taught Reasoners, arXiv:2402.06457"),
        "cct": ("SFT on confidence and critique rows of the correction format.",
                ("Confidence v.s. Critique: A Decomposition of Self-Correction Capability for LLMs, "
                "arXiv:2412.19513")),
    }.items():
        register_method(name, name, description=line, options=(), paper=paper)


_register()
