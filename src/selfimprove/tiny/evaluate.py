"""Direct scoring of a built-in model with ``generate`` — for pretraining's metadata and the design benchmark.

This is deliberately independent of the backends: it is how ``pretrain`` records "final held-out accuracy"
without depending on a backend, and how ``bench/`` measures greedy vs majority vote vs pass@k. Evaluation in
experiments goes through the ``hf`` backend and the strategies, not through this module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ..records import Example


def max_new_tokens(task, examples: Sequence[Example]) -> int:
    """Room for a full solution of the longest example, plus slack for a model that writes a bit more."""
    terms = max(e.meta["terms"] for e in examples)
    return (terms + 1) * (2 * task.width + 3) + task.width + 4


def generate(model, tokenizer, prompts: Sequence[str], *, n: int = 1, temperature: float = 0.0,
             max_new: int = 64, batch_size: int = 256, seed: int = 0) -> list[list[str]]:
    """``n`` completions per prompt (greedy when temperature is 0), decoded without special tokens."""
    import torch

    torch.manual_seed(seed)
    out: list[list[str]] = []
    per = max(1, batch_size // n)
    model.eval()
    for i in range(0, len(prompts), per):
        chunk = list(prompts[i:i + per])
        enc = tokenizer(chunk, return_tensors="pt", padding=True)
        kwargs = {"max_new_tokens": max_new, "pad_token_id": tokenizer.pad_token_id,
                  "eos_token_id": tokenizer.eos_token_id, "num_return_sequences": n}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_k=0, top_p=1.0)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            ids = model.generate(**enc, **kwargs)
        texts = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        out.extend(texts[j * n:(j + 1) * n] for j in range(len(chunk)))
    return out


def solve_accuracy(model, tokenizer, task, examples: Sequence[Example], **kwargs) -> float:
    """Greedy accuracy on ``examples`` (unparseable counts as wrong)."""
    texts = generate(model, tokenizer, [task.prompt(e) for e in examples],
                     max_new=max_new_tokens(task, examples), **kwargs)
    return sum(bool(task.check(e, task.extract(t[0]))) for e, t in zip(examples, texts)) / len(examples)


def vote_summary(task, examples: Sequence[Example], greedy: Sequence[str], samples: Sequence[Sequence[str]]
                 ) -> dict[str, float]:
    """Greedy accuracy, majority vote (maj@k, ties broken by first occurrence), pass@k, mean sample
    accuracy, unparseable rate, and the precision of majority-vote vs greedy pseudo-labels (= their accuracy,
    since every example gets a label; ``maj_abstain`` counts examples whose samples were all unparseable)."""
    n = len(examples)
    g_ok = maj_ok = pass_ok = abstain = 0
    sample_ok = unparse = total = 0
    shares = []
    for ex, g, ss in zip(examples, greedy, samples, strict=True):
        g_ok += bool(task.check(ex, task.extract(g)))
        answers = [task.extract(s) for s in ss]
        total += len(answers)
        unparse += sum(a is None for a in answers)
        oks = [bool(task.check(ex, a)) for a in answers]
        sample_ok += sum(oks)
        pass_ok += any(oks)
        votes = Counter(a for a in answers if a is not None)
        if not votes:
            abstain += 1
            continue
        top, count = votes.most_common(1)[0]
        shares.append(count / len(answers))
        maj_ok += bool(task.check(ex, top))
    return {"n": n, "greedy": g_ok / n, "maj": maj_ok / n, "pass": pass_ok / n,
            "sample_acc": sample_ok / total,
            "unparseable": unparse / total, "maj_abstain": abstain / n,
            "mean_vote_share": sum(shares) / max(1, len(shares))}


def p_yes(model, tokenizer, prompts: Sequence[str], batch_size: int = 256, think: str | None = None,
          max_new: int = 96) -> list[float | None]:
    """P(`` yes``) / (P(`` yes``) + P(`` no``)) for verify prompts: both answers start with a space, so the
    model is asked after ``prompt + " "`` and the choice is between ``y`` and ``n``. With ``think`` (the
    task's ``verify_think`` marker) the model first writes its rationale greedily, cut at the marker, and is
    asked after ``prompt + rationale + marker + " "``; a rationale that never wrote the marker gives None."""
    import torch

    missing: set[int] = set()
    if think:  # a rationale that never wrote the marker gets None (undecided), never a verdict
        texts = generate(model, tokenizer, prompts, max_new=max_new, batch_size=batch_size)
        missing = {i for i, t in enumerate(texts) if think not in t[0]}
        prompts = [p + t[0].split(think, 1)[0].rstrip() + " " + think for p, t in zip(prompts, texts)]

    y, n = tokenizer.convert_tokens_to_ids("y"), tokenizer.convert_tokens_to_ids("n")
    out: list[float] = []
    model.eval()
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer([p + " " for p in prompts[i:i + batch_size]], return_tensors="pt", padding=True)
        with torch.no_grad():  # left padding: RoPE is relative, so the shift of positions does not matter
            logits = model(**enc).logits[:, -1, [y, n]]
        out.extend(torch.softmax(logits.float(), -1)[:, 0].tolist())
    return [None if i in missing else p for i, p in enumerate(out)]


def verify_accuracy(model, tokenizer, task, examples: Sequence[Example], seed: int = 0) -> float:
    """Accuracy of the verify format on a balanced set: each example once with a right solution and once with
    a wrong one (``tiny.data.perturb``), both along a random order; P(yes) > 0.5 counts as yes."""
    import random

    from .data import perturb

    rng = random.Random(seed)
    prompts, truth = [], []
    for e in examples:
        p = task.problem(e)
        order = rng.sample(range(len(p.operands)), len(p.operands))
        for cand, ok in ((task.render(p, order), True), (perturb(task, p, order, rng), False)):
            prompts.append(task.verify_prompt(e, cand))
            truth.append(ok)
    think = task.verify_think  # format 2 writes a solution, the copied answer, digit marks
    scores = p_yes(model, tokenizer, prompts, think=think,
                   max_new=max_new_tokens(task, examples) + 5 * task.width + 8)
    # an undecided verdict (None) counts as wrong and stays in the denominator
    return sum(s is not None and (s > 0.5) == ok for s, ok in zip(scores, truth)) / len(truth)
