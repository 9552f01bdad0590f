"""Process reward model (PRM): per-step labels from rollouts, a step-scoring model trained on them, and its
step-level evaluation.

**Labels** (GOLD-READING: they compare rollouts with the gold answer, so they are training data only). A
solution is split into steps by the task's ``StepFormat``; from the prefix ending at step k, ``m`` completions
are sampled to the end, and the step's estimate is the share whose answer is the gold answer — Math-Shepherd
(Wang et al. 2024, "Math-Shepherd: Verify and Reinforce LLMs Step-by-step without Human Annotations",
arXiv:2312.08935). The last step of a solution is labelled by the solution's own answer (its one "rollout").
Rules (``LABELS``):

- ``some`` — the paper's hard estimate: 1 if any rollout reaches the gold answer, else 0;
- ``most`` — 1 if at least half do;
- ``soft`` — the share itself (the paper's soft estimate);
- ``inferred`` — ReST-MCTS*'s inferred per-step value (Zhang et al. 2024, "ReST-MCTS*: LLM Self-Training via
  Process Reward Guided Tree Search", arXiv:2406.03816): v_k = max(v_{k−1} + (1 − v_{k−1}) / (m_k + 1) ·
  (1 − 2 r_k), 0), v_0 = 0, with r_k = 0 when step k is good by ``some`` and 1 otherwise, and m_k = K − k the
  steps left to the end of the solution (so a solution whose every step is good climbs to v_K = 1).

**Model**: a token-classification head with two labels (bad, good) on the policy's backbone
(``AutoModelForTokenClassification`` from the policy's directory; the head is new), trained on the last token
of every step with cross-entropy against the target [1 − y, y] (soft labels allowed) by a small
``transformers.Trainer`` subclass: the installed TRL 1.16 ships no PRM trainer (``trl.experimental`` has
none). A step's score is P(good) at its last token. ``train_prm`` saves a loadable directory (weights,
tokenizer, ``prm.json``); ``prm_score.PRMScorer`` loads it, and ``prm_score.prm_metrics`` reports step
accuracy and F1 (of the good and of the bad class, threshold 0.5) against held-out rollout labels, with the
majority-class baseline beside them.

On a chat model the PRM reads the prompt through the chat template, as the policy did, with the solution as
the assistant's reply; the rollouts continue a prefix as the start of that reply. ``train_layers`` trains only
the top blocks (a real model on a CPU).

Not covered: LoRA PRMs on real models (full weights or the top blocks only), a PRM that scores a step by a
special tag token, OmegaPRM's binary search for the first error (every prefix is rolled out here).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..chat import continue_reply, model_text
from ..records import Example, Record, SamplingParams, Step
from ..tasks.steps import StepFormat, step_format

LABELS = ("some", "most", "soft", "inferred")


@dataclass(frozen=True)
class PRMRow(Record):
    """One solution split into steps, with a label in [0, 1] per step (1: the step still leads to the
    answer)."""

    prompt: str
    """The task prompt the solution continues."""
    steps: list[str]
    """The solution's steps; their concatenation is the solution text."""
    labels: list[float]
    """One label per step (the rule's value)."""
    example_id: str
    """The example the solution answers."""
    rule: str = "some"
    """The labelling rule (``LABELS``)."""
    shares: list[float] = field(default_factory=list)
    """Per step: the share of rollouts that reached the gold answer (what every rule is computed from)."""
    round_idx: int = 0
    """The round whose generation produced the solution."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PRMRow:
        return cls(**d)


def label_steps(shares: Sequence[float], rule: str) -> list[float]:
    """Per-step labels from the per-step shares of rollouts that reached the gold answer."""
    if rule not in LABELS:
        raise ValueError(f"PRM label rule must be one of {', '.join(LABELS)}, got {rule!r}")
    if rule == "some":
        return [1.0 if s > 0 else 0.0 for s in shares]
    if rule == "most":
        return [1.0 if s >= 0.5 else 0.0 for s in shares]
    if rule == "soft":
        return [float(s) for s in shares]
    out, v, k_total = [], 0.0, len(shares)
    for k, s in enumerate(shares, start=1):
        r = 0.0 if s > 0 else 1.0
        v = max(v + (1.0 - v) / (k_total - k + 1) * (1.0 - 2.0 * r), 0.0)
        out.append(v)
    return out


def rollout_labels(
    backend,
    task,
    examples: Sequence[Example],
    solutions: Sequence[Sequence[str]],
    *,
    m: int = 4,
    rule: str = "some",
    temperature: float = 0.8,
    max_tokens: int = 256,
    seed: int = 0,
    fmt: StepFormat | None = None,
    round_idx: int = 0,
) -> tuple[list[PRMRow], list[Step]]:
    """Label every step of every solution (``solutions[i]``: completion texts for ``examples[i]``) by ``m``
    rollouts from its prefix, all prefixes in one ``generate`` call (identical prefixes of one example share
    their rollouts). Returns the rows (solutions with no steps are skipped) and the rollout steps (their
    tokens
    are the labelling's cost). Reads gold answers."""
    if m < 1:
        raise ValueError(f"rollouts m must be >= 1, got {m}")
    label_steps([], rule)  # validates the rule
    fmt = fmt or step_format(task)
    chat = bool(getattr(backend.capabilities, "chat_template", False))  # prefix = start of the reply
    jobs: dict[tuple[str, str], str] = {}  # (example id, prefix) -> prompt
    split: list[list[tuple[Example, list[str]]]] = []
    for e, texts in zip(examples, solutions):
        split.append([(e, fmt.split(t)) for t in texts])
        for _, steps in split[-1]:
            for k in range(len(steps) - 1):
                prefix = "".join(steps[: k + 1])
                jobs.setdefault((e.id, prefix), continue_reply(task.prompt(e), prefix, chat))
    keys = list(jobs)
    params = SamplingParams(
        n=m, temperature=temperature, max_tokens=max_tokens, stop=tuple(task.stop), seed=seed
    )
    batches = backend.generate([jobs[k] for k in keys], params) if keys else []
    by_id = {e.id: e for e in examples}
    share: dict[tuple[str, str], float] = {}
    calls = []
    for key, comps in zip(keys, batches):
        e, prefix = by_id[key[0]], key[1]
        answers = task.extract_many([prefix + c.text for c in comps])
        ok = [bool(c.ok and task.check(e, a)) for c, a in zip(comps, answers)]
        share[key] = sum(ok) / len(comps)
        calls.append(
            Step(
                kind="rollout",
                prompt=jobs[key],
                completions=tuple(comps),
                answers=tuple(answers),
                info={"example_id": e.id, "share": share[key], "correct": ok},
            )
        )
    rows = []
    for sols in split:
        for e, steps in sols:
            if not steps:
                continue
            final = 1.0 if task.check(e, task.extract("".join(steps))) else 0.0
            shares = [share[(e.id, "".join(steps[: k + 1]))] for k in range(len(steps) - 1)] + [final]
            rows.append(
                PRMRow(task.prompt(e), list(steps), label_steps(shares, rule), e.id, rule, shares, round_idx)
            )
    return rows, calls


def step_positions(
    tokenizer, prompt: str, steps: Sequence[str], chat: bool = True
) -> tuple[list[int], list[int]]:
    """(token ids of prompt + all steps, index of the last token of each step), the prompt rendered as the
    policy received it (``chat.model_text``: the chat template with its generation prompt when the tokenizer
    has one and ``chat``, the steps then being the assistant's reply; else the plain text) — never the
    conversation markers. A step's last token is the last one that ends within the step (a fast tokenizer's
    offsets), so a token that merges the step's trailing space with the next step's first word (BPE's
    " The") is never read; an empty step gets the previous position."""
    templated = chat and bool(getattr(tokenizer, "chat_template", None))
    head = model_text(tokenizer, prompt, use_template=templated)
    text = head + "".join(steps)
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=not templated, return_offsets_mapping=True)
        ids, ends = list(enc["input_ids"]), [b for _, b in enc["offset_mapping"]]
        pos, end = [], len(head)
        for s in steps:
            end += len(s)
            pos.append(max([i for i, b in enumerate(ends) if b <= end and b > 0] or [0]))
        return ids, pos
    ids = list(tokenizer(text, add_special_tokens=not templated)["input_ids"])
    pos, prefix = [], head
    for s in steps:
        prefix += s
        n = len(tokenizer(prefix, add_special_tokens=not templated)["input_ids"])
        pos.append(max(min(n, len(ids)) - 1, 0))
    return ids, pos


@dataclass(frozen=True)
class PRMSettings:
    """How a PRM is trained."""

    lr: float = 1e-3
    """Learning rate (the head is new; the backbone is fine-tuned with it)."""
    epochs: float = 3.0
    """Passes over the rows; ``max_steps`` caps the steps."""
    batch_size: int = 16
    """Solutions per optimiser step."""
    max_steps: int = 200
    """Cap on optimiser steps (-1: no cap)."""
    seed: int = 0
    """Seed of the head's initialisation and the data order."""
    train_layers: int = -1
    """Transformer blocks trained below the head, counted from the top (-1: all, 0: the head and final norm
    only); the rest is frozen, which makes a real model's PRM affordable on a CPU."""

    def __post_init__(self) -> None:
        if not self.lr > 0 or not self.epochs > 0 or self.batch_size < 1:
            raise ValueError(
                f"PRMSettings: lr and epochs must be > 0 and batch_size >= 1, got {self.lr}, "
                f"{self.epochs}, {self.batch_size}"
            )
        if self.train_layers < -1:
            raise ValueError(f"PRMSettings.train_layers must be -1 (all) or >= 0, got {self.train_layers}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"PRMSettings.max_steps must be -1 (no cap) or >= 1, got {self.max_steps}")


def _encode(tokenizer, rows: Sequence[PRMRow], chat: bool = True) -> list[dict[str, list]]:
    out = []
    for r in rows:
        ids, pos = step_positions(tokenizer, r.prompt, r.steps, chat)
        labels = [-100.0] * len(ids)
        for p, y in zip(pos, r.labels):
            labels[p] = float(y)
        out.append({"input_ids": ids, "labels": labels})
    return out


def _freeze_below(model, train_layers: int) -> int:
    """Freeze the embeddings and every transformer block but the top ``train_layers`` (-1: freeze nothing);
    return the number of trainable parameters."""
    import re

    if train_layers >= 0:
        block = re.compile(r"\.(?:layers|h|blocks)\.(\d+)\.")
        found = [int(m.group(1)) for n, _ in model.named_parameters() if (m := block.search(n))]
        top = max(found, default=-1) + 1
        for name, param in model.named_parameters():
            m = block.search(name)
            if m:
                param.requires_grad = int(m.group(1)) >= top - train_layers
            elif "embed" in name or re.search(r"\bwte\b|\bwpe\b", name):
                param.requires_grad = False
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_prm(
    policy: str | Path,
    rows: Sequence[PRMRow],
    settings: PRMSettings,
    save_to: str | Path,
    meta: dict[str, Any] | None = None,
    chat: bool = True,
) -> dict[str, Any]:
    """Train a PRM from the policy directory ``policy`` on ``rows``; save it (weights, tokenizer,
    ``prm.json``) to ``save_to``; return what training did. ``chat``: the policy's prompts went through its
    chat template (when its tokenizer has one), so the PRM reads them the same way (recorded in
    ``prm.json``)."""
    import time

    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, Trainer, TrainingArguments

    if not rows:
        raise ValueError("train_prm needs at least one labelled solution")
    torch.manual_seed(settings.seed)
    tok = AutoTokenizer.from_pretrained(str(policy))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForTokenClassification.from_pretrained(
        str(policy), num_labels=2, id2label={0: "bad", 1: "good"}, label2id={"bad": 0, "good": 1}
    )
    model.config.pad_token_id = tok.pad_token_id
    trainable = _freeze_below(model, settings.train_layers)
    data = _encode(tok, rows, chat)
    pad = tok.pad_token_id

    def collate(batch):
        n = max(len(b["input_ids"]) for b in batch)
        ids = torch.tensor([b["input_ids"] + [pad] * (n - len(b["input_ids"])) for b in batch])
        mask = torch.tensor([[1] * len(b["input_ids"]) + [0] * (n - len(b["input_ids"])) for b in batch])
        labels = torch.tensor([b["labels"] + [-100.0] * (n - len(b["labels"])) for b in batch])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    class SoftStepTrainer(Trainer):
        """Cross-entropy of the two-label head against [1 − y, y] at the labelled positions only."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            out = model(**inputs)
            logp = torch.log_softmax(out.logits.float(), dim=-1)
            keep = labels >= 0
            y = labels[keep]
            loss = -(y * logp[..., 1][keep] + (1 - y) * logp[..., 0][keep]).mean()
            return (loss, out) if return_outputs else loss

    steps = math.ceil(settings.epochs * len(data) / settings.batch_size)
    steps = steps if settings.max_steps == -1 else min(steps, settings.max_steps)
    with __import__("tempfile").TemporaryDirectory(prefix="selfimprove-prm-") as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            learning_rate=settings.lr,
            max_steps=steps,
            per_device_train_batch_size=settings.batch_size,
            seed=settings.seed,
            data_seed=settings.seed,
            lr_scheduler_type="constant",
            logging_steps=1,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            dataloader_num_workers=0,
            remove_unused_columns=False,
        )
        trainer = SoftStepTrainer(model=model, args=args, train_dataset=data, data_collator=collate)
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    save_to = Path(save_to)
    model.eval()
    model.save_pretrained(save_to)
    tok.save_pretrained(save_to)
    info = {
        "rows": len(rows),
        "labelled_steps": sum(len(r.steps) for r in rows),
        "steps": steps,
        "seconds": round(seconds, 3),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "policy": str(policy),
        "chat": chat,
        "train_layers": settings.train_layers,
        "trainable_parameters": trainable,
        "rules": sorted({r.rule for r in rows}),
        "reads_gold": True,
        **(meta or {}),
    }
    (save_to / "prm.json").write_text(json.dumps(info, indent=1, sort_keys=True))
    return info


__all__ = [
    "LABELS",
    "PRMRow",
    "PRMSettings",
    "label_steps",
    "rollout_labels",
    "step_positions",
    "train_prm",
]
