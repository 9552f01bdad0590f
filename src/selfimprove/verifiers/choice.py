"""A constrained choice read from the model's probabilities instead of parsed from its text.

A small instruct model asked "Answer Yes or No" or "Reply with a score from 0 to 5" often writes something
else ("User: 3 + 6 = 9", a paragraph, a number out of range); parsing its text then leaves most verdicts
unscored. Scoring the few allowed answers as continuations always gives a reading, and says how much of the
model's probability went to them at all:

- each option (``"yes"``, ``"3"``, ``"A"``) is scored in all its surface forms (``"Yes"``, ``" yes"``,
  ``"YES"`` …): the option's probability is the sum over its forms, so the reading does not depend on a
  leading space or on the capitalisation the chat template happens to favour;
- ``probs`` are the options' probabilities normalised over the options; ``mass`` is their total before
  normalising: the share of the model's next-answer probability that went to an allowed answer at all;
- below ``min_mass`` there is no reading (``probs`` None): the model was not answering in the requested form,
  and a ratio of two tiny probabilities is noise. The reason is kept and counted as unscored.

Used by P(True) / P(IK) (Kadavath et al. 2022, "Language Models (Mostly) Know What They Know",
arXiv 2207.05221: yes vs no), the rubric judge (the expected score over score tokens, as in Liu et al. 2023,
"G-Eval: NLG Evaluation using GPT-4 with Better Human Alignment", arXiv 2303.16634), the pairwise judge
(A vs B) and Universal Self-Consistency's selection (a response number).

On a local Hugging Face model every form is read from one forward pass per prompt: the single-token forms
("Yes", "3", "A") from its next-token distribution, the others ("YES" = "Y" + "ES", " 3" = " " + "3" in
SmolLM2's vocabulary) by continuing its KV cache (the prompt is encoded once, not once per form, which on a
few-hundred-token judge prompt was most of a judge's cost), and the tokens every prompt of a call starts with
(the instructions, a few-shot conversation) are encoded once for the call; on other backends every form is
scored one row each by ``backend.loglikelihood``.

Not covered: options whose forms are prefixes of each other's (``"1"`` and ``"10"``: the shorter one's
probability would include the longer one's), which callers avoid by offering single-character options.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..records import Completion, Step

MIN_MASS = 0.01
"""Default floor on the options' total probability below which a choice has no reading."""


@dataclass(frozen=True)
class Choice:
    """The model's distribution over a few options after one prompt."""

    probs: dict[str, float] | None
    """Option → probability, normalised over the options; None when ``mass`` < the floor."""
    mass: float
    """Total probability of every form of every option (0..1)."""
    loglikelihoods: dict[str, list[float]]
    """Option → the log-likelihood of each of its forms, in the order scored."""

    @property
    def why(self) -> str:
        return (f"only {self.mass:.1%} of the probability on an allowed answer "
                f"({', '.join(self.loglikelihoods)})")


def surface_forms(word: str) -> tuple[str, ...]:
    """The forms of an answer word a model may write: as given, lower, capitalised, upper, each with and
    without a leading space (deduplicated, in that order)."""
    out: list[str] = []
    for form in (word, word.lower(), word.capitalize(), word.upper()):
        for v in (form, " " + form):
            if v not in out:
                out.append(v)
    return tuple(out)


def choose(backend, prompts: Sequence[str], options: Sequence[tuple[str, Sequence[str]]],
           min_mass: float = MIN_MASS) -> tuple[list[Choice], list[tuple[Completion, ...]]]:
    """One batched ``loglikelihood`` call: every form of every option after every prompt.

    Returns one ``Choice`` per prompt and, per prompt, the scored continuations as ``Completion``s (one per
    form, with its token counts), so that the cost metrics see the work."""
    if not prompts:
        return [], []
    forms = [(label, v) for label, variants in options for v in variants]
    fast = _next_token_scores(backend, prompts, [v for _, v in forms])
    slow = [(k, j) for k in range(len(prompts)) for j in range(len(forms))
            if fast is None or fast[k * len(forms) + j] is None]
    lls = list(fast) if fast is not None else [0.0] * (len(prompts) * len(forms))
    if slow:  # forms of more than one token (or no local model): one scored row each
        scores = backend.loglikelihood([prompts[k] for k, _ in slow], [forms[j][1] for _, j in slow])
        for (k, j), x in zip(slow, scores):
            lls[k * len(forms) + j] = x
    choices, comps = [], []
    for k, prompt in enumerate(prompts):
        row = lls[k * len(forms):(k + 1) * len(forms)]
        by_label: dict[str, list[float]] = {label: [] for label, _ in options}
        for (label, _), ll in zip(forms, row):
            by_label[label].append(ll)
        p = {label: sum(math.exp(x) for x in xs) for label, xs in by_label.items()}
        mass = sum(p.values())
        probs = {label: x / mass for label, x in p.items()} if mass > 0 and mass >= min_mass else None
        choices.append(Choice(probs=probs, mass=mass, loglikelihoods=by_label))
        comps.append(_scored(backend, prompt, [v for _, v in forms]))
    return choices, comps


def choice_step(kind: str, prompt: str, choice: Choice, comps: tuple[Completion, ...], **info) -> Step:
    """A step recording one constrained choice: the scored forms as completions, the reading in ``info``."""
    return Step(kind=kind, prompt=prompt, completions=comps,
                info={"method": "loglikelihood", "probs": choice.probs, "mass": choice.mass,
                      "loglikelihoods": choice.loglikelihoods, **info})


def _next_token_scores(backend, prompts: Sequence[str], forms: Sequence[str]) -> list[float | None] | None:
    """The log-likelihoods ``backend.loglikelihood`` would give for every form on a local Hugging Face model,
    computed from one forward pass over each prompt (row-major: prompt, then form): a one-token form is read
    from the prompt's next-token distribution; the forms of several tokens ("YES" may be "Y" + "ES", " 3" is
    " " + "3") continue the prompt's KV cache in one small batch, so the prompt is never encoded twice.
    None when the backend has no local model (the caller then scores every form with ``loglikelihood``)."""
    model, tokenizer = getattr(backend, "model", None), getattr(backend, "tokenizer", None)
    encode = getattr(backend, "encode_prompt", None)
    if model is None or tokenizer is None or encode is None or not hasattr(model, "forward"):
        return None
    ids = [list(tokenizer(f, add_special_tokens=False)["input_ids"]) for f in forms]
    if not all(ids):
        return None
    import torch

    from ..backends.batching import shared_prefix
    from ..backends.prefill import encode_prefix

    contexts = [list(encode(prompt)) for prompt in prompts]
    k = shared_prefix(contexts)  # a judge's instructions, a few-shot conversation: encoded once for all
    out: list[float | None] = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            head = (k, encode_prefix(model, contexts[0][:k])) if k else None
            for context in contexts:
                out.extend(_form_scores(model, context, ids, head))
    finally:
        model.train(was_training)
    return out


def _form_scores(model, context: list[int], forms: list[list[int]], head=None) -> list[float]:
    """log p(form | context) for each tokenised form: one forward over the context with a cache (after
    ``head`` = (k, the cache of the context's first k tokens) when given: only the rest is encoded), then the
    several-token forms' remaining tokens as one right-padded batch on copies of that cache."""
    import copy

    import torch
    from transformers import DynamicCache

    dev = model.device
    start, cache = (head[0], copy.deepcopy(head[1])) if head else (0, DynamicCache(config=model.config))
    out = model(input_ids=torch.tensor([context[start:]], device=dev), cache=cache, use_cache=True,
                logits_to_keep=1)
    first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
    scores = [float(first[f[0]]) for f in forms]
    multi = [j for j, f in enumerate(forms) if len(f) > 1]
    if not multi:
        return scores
    width, n = max(len(forms[j]) for j in multi) - 1, len(context)
    rows = torch.zeros((len(multi), width), dtype=torch.long)
    tail = torch.zeros((len(multi), width), dtype=torch.long)
    for r, j in enumerate(multi):  # right padding: a real token never attends to the pads after it
        rows[r, :len(forms[j]) - 1] = torch.tensor(forms[j][:-1])
        tail[r, :len(forms[j]) - 1] = 1
    cache = out.cache
    cache.batch_select_indices(torch.zeros(len(multi), dtype=torch.long, device=dev))
    mask = torch.cat([torch.ones((len(multi), n), dtype=torch.long), tail], dim=-1).to(dev)
    pos = torch.arange(n, n + width, device=dev).expand(len(multi), -1)
    logits = model(input_ids=rows.to(dev), attention_mask=mask, position_ids=pos, cache=cache,
                   use_cache=True).logits
    logp = torch.log_softmax(logits.float(), dim=-1)
    for r, j in enumerate(multi):
        rest = forms[j][1:]
        scores[j] += float(logp[r, torch.arange(len(rest)), torch.tensor(rest, device=dev)].sum())
    return scores


def _scored(backend, prompt: str, continuations: Sequence[str]) -> tuple[Completion, ...]:
    encode = getattr(backend, "encode_prompt", None)
    count = (lambda text: len(encode(text))) if encode is not None else len
    n_prompt = count(prompt)
    return tuple(Completion(text=c, prompt_tokens=n_prompt,
                            completion_tokens=max(count(prompt + c) - n_prompt, 1))
                 for c in continuations)
