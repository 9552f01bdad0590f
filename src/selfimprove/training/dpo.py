"""Direct Preference Optimization on preference pairs through TRL's ``DPOTrainer``, with per-pair weights.

``train_dpo(model, tokenizer, pairs, settings)`` trains on ``{"prompt", "chosen", "rejected", "weight"}`` rows
(``preferences.PreferencePair.trl()``) with TRL 1.16's ``DPOTrainer``. The loss is TRL's:
``settings.loss_type`` is passed through (``("sigmoid",)`` is "Direct Preference Optimization: Your Language
Model is Secretly a Reward Model", arXiv:2305.18290; ``("sigmoid", "sft")`` adds the NLL of the chosen
completion, the combined objective of "Self-Consistency Preference Optimization", arXiv:2411.04109, and of
iterative RPO; any TRL loss type works). The default is the combined loss because on the built-in model plain
sigmoid DPO lowered accuracy while the chosen answers' likelihood fell with the rejected ones
(docs/results/preference-methods.md).

**Weights** (ScPO's vote margin). ``WeightedDPOTrainer`` subclasses ``DPOTrainer``: pair i's weight wᵢ scales
the gradient through that pair's token log-probabilities (chosen and rejected rows), forward values untouched.
For every loss type whose per-pair term ℓᵢ depends only on pair i (all but the batch-sorting aot and
aot_unpaired, refused with weights ≠ 1) the gradient is exactly that of (1/N)·Σᵢ wᵢ·ℓᵢ; the ``sft`` term
becomes the chosen-token NLL with pair i's tokens weighted by wᵢ. All weights 1: it *is* TRL's DPO. The logged
``loss`` is TRL's unweighted value, ``weight/mean`` is logged beside it.

The reference is the policy as the call received it (a copy: the previous iterate, as Self-Rewarding, SPIN
and ScPO iterate); with ``lora=True`` it is the adapter-disabled model and the adapter is merged before
saving. TRL defaults a small CPU run does not want are overridden as in ``sft.py``. Every call reports the
mean log π(chosen) and log π(rejected) before and after training: a falling chosen log-probability is the
failure mode to watch. ``DPOVerifier`` is the verifier of "V-STaR: Training Verifiers for Self-Taught
Reasoners" (arXiv:2402.06457) behind the verifier protocol: a
candidate's score is the DPO implicit reward log π_V(y|x) − log π_ref(y|x) (or log π_V alone).

Not covered: precomputed reference log-probs, TR-DPO reference syncing, padding-free batches.
"""

from __future__ import annotations

import copy
import functools
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..records import Example, Record, Step, Verdict
from .settings import LOSS_TYPES, DPOSettings
from .sft import drop_fused_head, load_policy, lora_config, save_policy

__all__ = ["BATCH_COUPLED", "LOSS_TYPES", "DPOResult", "DPOSettings", "DPOVerifier", "train_dpo"]

BATCH_COUPLED = {"aot", "aot_unpaired"}
"""Loss types that sort the batch: no per-pair term to weight."""


@dataclass(frozen=True)
class DPOResult(Record):
    """What one DPO call did, with the likelihoods to watch."""

    pairs: int
    """Pairs trained on."""
    steps: int
    """Optimiser steps taken."""
    losses: tuple[float, ...] = ()
    """TRL's (unweighted) training loss at each logged step."""
    seconds: float = 0.0
    """Wall time of ``trainer.train()``."""
    lora: bool = False
    """Whether a LoRA adapter was trained (and merged)."""
    loss_type: tuple[str, ...] = ()
    """The TRL loss types used."""
    chosen_logp_before: float | None = None
    """Mean log π(chosen | prompt) over the pairs before training (sum over completion tokens, EOS
    excluded)."""
    chosen_logp_after: float | None = None
    """The same after training."""
    rejected_logp_before: float | None = None
    """Mean log π(rejected | prompt) before training."""
    rejected_logp_after: float | None = None
    """The same after training."""
    logp_pairs: int = 0
    """Pairs the log-probabilities above were measured on (those that fit the model's context)."""
    trl_metrics: tuple[dict[str, float], ...] = ()
    """TRL's logged metrics per logged step (logps/chosen, rewards/margins, rewards/accuracies, ...)."""

    logratio_before = property(lambda self: _diff(self.chosen_logp_before, self.rejected_logp_before))
    """Mean log π(chosen) − mean log π(rejected) before training (the preferred log-ratio)."""
    logratio_after = property(lambda self: _diff(self.chosen_logp_after, self.rejected_logp_after))
    """The same after training."""

    def summary(self) -> dict[str, Any]:
        """The record plus the derived log-ratios (what a round's ``train.json`` stores)."""
        return {**self.to_dict(), "logratio_before": self.logratio_before,
                "logratio_after": self.logratio_after,
                "first_loss": self.losses[0] if self.losses else None,
                "last_loss": self.losses[-1] if self.losses else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DPOResult:
        tuples = ("losses", "loss_type", "trl_metrics")
        return cls(
            **{k: tuple(v) if k in tuples else v for k, v in d.items() if k in cls.__dataclass_fields__})


def train_dpo(model, tokenizer, pairs: Sequence[dict[str, Any]], settings: DPOSettings,
              save_to: str | Path | None = None, ref_model=None, chat: bool = True):
    """DPO on ``pairs``; returns ``(trained_model, DPOResult)``.

    ``model`` is a ``PreTrainedModel`` or a path (then ``tokenizer`` may be None). ``ref_model`` defaults to
    a frozen copy of ``model`` as passed (unused with LoRA). Pairs with an empty chosen or rejected text, or
    with a negative weight, are refused. With ``save_to`` the trained model (LoRA merged) and the tokenizer
    are written there. ``chat`` False: prompts as plain text, not through the chat template (the hf backend's
    option)."""
    if isinstance(model, (str, Path)):
        model, loaded = load_policy(model)
        tokenizer = tokenizer or loaded
    rows = [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"],
             "weight": float(p.get("weight", 1.0))} for p in pairs]
    if any(p.get("partial") for p in pairs):  # step-level pairs: no EOS after a step inside a solution
        for r, p in zip(rows, pairs):
            r["partial"] = bool(p.get("partial"))
    if not rows:
        raise ValueError("train_dpo needs at least one pair; the caller should skip training on empty data")
    if any(not r["chosen"] or not r["rejected"] for r in rows):
        raise ValueError("train_dpo: a pair has an empty chosen or rejected text; filter it out first")
    if any(not r["weight"] >= 0 for r in rows):
        raise ValueError("train_dpo: pair weights must be >= 0")
    weighted = any(r["weight"] != 1.0 for r in rows)
    if weighted and BATCH_COUPLED & set(settings.loss_type):
        raise ValueError(
            f"loss types {sorted(BATCH_COUPLED)} sort the batch and cannot take per-pair weights")

    import datasets
    from transformers import PrinterCallback

    from ..chat import model_text

    datasets.disable_progress_bars()
    before = completion_logps(model, tokenizer, rows, chat=chat)
    if ref_model is None and not settings.lora:
        ref_model = copy.deepcopy(model).eval()
        for p in ref_model.parameters():
            p.requires_grad_(False)
    with tempfile.TemporaryDirectory(prefix="selfimprove-dpo-") as tmp:
        trainer_cls = _trainer_classes()["WeightedDPOTrainer"]
        trainer = trainer_cls(model=model, ref_model=None if settings.lora else ref_model,
                              args=dpo_config(settings, tmp, len(rows)), processing_class=tokenizer,
                              train_dataset=datasets.Dataset.from_list(
                                  [{**r, "prompt": model_text(tokenizer, r["prompt"], chat)} for r in rows]),
                              peft_config=lora_config(settings) if settings.lora else None)
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        trained = trainer.model
        history = trainer.state.log_history
        steps = int(trainer.state.global_step)
        main = trainer.accelerator.is_main_process  # under `accelerate launch`, one process writes
    if settings.lora:
        trained = trained.merge_and_unload()
    drop_fused_head(trained)  # its closure would call back into this model from next round's reference copy
    trained.eval()
    after = completion_logps(trained, tokenizer, rows, chat=chat)
    if save_to is not None and main:
        save_policy(trained, tokenizer, save_to)
    keep = ("loss", "logps/chosen", "logps/rejected", "rewards/margins", "rewards/accuracies", "weight/mean")
    metrics = tuple({k: float(h[k]) for k in keep if k in h} for h in history if "loss" in h)
    return trained, DPOResult(
        pairs=len(rows), steps=steps, seconds=round(seconds, 3), lora=settings.lora,
        loss_type=settings.loss_type,
        losses=tuple(m["loss"] for m in metrics if math.isfinite(m["loss"])),
        chosen_logp_before=before[0], rejected_logp_before=before[1], chosen_logp_after=after[0],
        rejected_logp_after=after[1], logp_pairs=after[2], trl_metrics=metrics)


def dpo_config(settings: DPOSettings, output_dir: str, n_pairs: int | None = None):
    """The ``trl.DPOConfig`` for ``settings`` (field names checked against TRL 1.16's source). With
    ``n_pairs`` the step count is ⌈epochs·n_pairs / batch_size⌉ capped at ``max_steps`` (the Trainer alone
    would let ``max_steps`` override the epochs and loop a small pair set many times)."""
    import torch
    from trl import DPOConfig

    steps = settings.max_steps
    if n_pairs is not None:
        steps = math.ceil(settings.epochs * n_pairs / (settings.batch_size * settings.accumulation))
        steps = steps if settings.max_steps == -1 else min(steps, settings.max_steps)

    bf16 = settings.precision == "bf16" or (
        settings.precision == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return DPOConfig(
        output_dir=output_dir, learning_rate=settings.lr, num_train_epochs=settings.epochs,
        max_steps=steps, per_device_train_batch_size=settings.batch_size,
        lr_scheduler_type=settings.scheduler, warmup_steps=settings.warmup_steps, seed=settings.seed,
        data_seed=settings.seed, max_length=settings.max_length, beta=settings.beta,
        loss_type=list(settings.loss_type),
        loss_weights=None if settings.loss_weights is None else list(settings.loss_weights),
        activation_checkpointing=False, bf16=bf16, fp16=False,  # TRL defaults both to on
        logging_strategy="steps", logging_steps=settings.logging_steps, report_to="none", save_strategy="no",
        eval_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(), **settings.trl_args,
    )


@functools.cache
def _trainer_classes():
    """Build the TRL subclasses on first use (TRL is a heavy import); ``dpo.WeightedDPOTrainer`` and
    ``dpo.WeightedPreferenceCollator`` resolve to them through the module's ``__getattr__``."""
    import torch
    from trl import DPOTrainer
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    class WeightedPreferenceCollator(DataCollatorForPreference):
        """TRL's preference collator, plus a ``weight`` tensor (one per pair; 1 where a row has none)."""

        def torch_call(self, examples):
            out = super().torch_call(examples)
            out["weight"] = torch.tensor([float(e.get("weight", 1.0)) for e in examples], dtype=torch.float32)
            return out

    class _RowGradScale:
        """Calls the model and scales the gradient of row b's token log-probabilities by ``scale[b]``.

        ``x.detach() + (x - x.detach()) * s`` has the value of x exactly and the gradient s·∂/∂x."""

        def __init__(self, model, scale) -> None:
            self.model, self.scale = model, scale

        def __call__(self, *args, **kwargs):
            out = self.model(*args, **kwargs)
            lp = getattr(out, "log_probs", None)
            if lp is None:  # a plain forward (TRL's deprecated return_outputs path): nothing to scale
                return out
            s = self.scale.to(device=lp.device, dtype=lp.dtype)[:, None]
            out.log_probs = lp.detach() + (lp - lp.detach()) * s
            return out

        def __getattr__(self, name):
            return getattr(self.model, name)

    class WeightedDPOTrainer(DPOTrainer):
        """TRL's DPOTrainer with a per-pair weight on each pair's loss terms (see the module docstring)."""

        def __init__(self, model, ref_model=None, args=None, data_collator=None, *, processing_class=None,
                     **kwargs):
            if data_collator is None and processing_class is not None:
                tok = getattr(processing_class, "tokenizer", processing_class)
                if tok.pad_token is None:
                    tok.pad_token = tok.eos_token
                data_collator = WeightedPreferenceCollator(
                    pad_token_id=tok.pad_token_id, max_length=getattr(args, "max_length", None),
                    truncation_mode=getattr(args, "truncation_mode", "keep_start"))
            super().__init__(model, ref_model, args, data_collator, processing_class=processing_class,
                             **kwargs)

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            """TRL's preparation; then rows marked ``partial`` (a step inside a solution) lose the EOS TRL
            appended to their chosen and rejected tokens."""
            dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            if "partial" not in dataset.column_names:
                return dataset
            tok = getattr(processing_class, "tokenizer", processing_class)
            eos = tok.eos_token_id

            def strip(row):
                if row["partial"]:
                    for key in ("chosen_ids", "rejected_ids"):
                        if len(row[key]) > 1 and row[key][-1] == eos:
                            row[key] = row[key][:-1]
                return row

            return dataset.map(strip).remove_columns("partial")

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            if "weight" not in self._signature_columns:
                self._signature_columns = [*self._signature_columns, "weight"]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weight = inputs.pop("weight", None)
            if weight is None or bool((weight == 1).all()):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["weight/mean"].append(float(weight.mean()))
            # the batch is [chosen_0..chosen_{N-1}, rejected_0..rejected_{N-1}]
            scaled = _RowGradScale(model, torch.cat([weight, weight]))
            return super().compute_loss(scaled, inputs, return_outputs, num_items_in_batch)

        def compute_ref_log_probs(self, model, inputs):
            inputs = {k: v for k, v in inputs.items() if k != "weight"}
            return super().compute_ref_log_probs(model, inputs)

    return {"WeightedDPOTrainer": WeightedDPOTrainer,
            "WeightedPreferenceCollator": WeightedPreferenceCollator}


def __getattr__(name: str):
    """Lazy classes: ``from selfimprove.training.dpo import WeightedDPOTrainer`` imports TRL only then."""
    if name in ("WeightedDPOTrainer", "WeightedPreferenceCollator"):
        return _trainer_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def completion_logps(model, tokenizer, rows: Sequence[dict[str, Any]],
                     chat: bool = True) -> tuple[float | None, float | None, int]:
    """Mean log π(chosen | prompt), mean log π(rejected | prompt) (EOS excluded) and the number of pairs
    measured: pairs longer than the model's context are left out (TRL truncates them for training)."""
    from ..backends.hf import HFBackend
    from ..chat import model_text

    limit = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    fits = [r for r in rows if limit is None or max(
        len(tokenizer(model_text(tokenizer, r["prompt"], chat) + r[k])["input_ids"])
        for k in ("chosen", "rejected")) <= limit]
    if not fits:
        return None, None, 0
    backend = HFBackend.from_model(model, tokenizer, chat=chat)
    prompts = [r["prompt"] for r in fits]
    chosen = backend.loglikelihood(prompts, [r["chosen"] for r in fits])
    rejected = backend.loglikelihood(prompts, [r["rejected"] for r in fits])
    return sum(chosen) / len(fits), sum(rejected) / len(fits), len(fits)


class DPOVerifier:
    """V-STaR's verifier: score(x, y) = log π_V(y|x) − log π_ref(y|x) ('logratio', DPO's implicit reward up to
    β) or log π_V(y|x) ('likelihood'). Both backends need ``loglikelihood``; judges whole candidate texts."""

    name = "dpo-verifier"
    uses_gold = False

    def __init__(self, verifier_backend, reference_backend, task, score: str = "logratio",
                 threshold: float = 0.0) -> None:
        if score not in ("logratio", "likelihood"):
            raise ValueError(f"score must be 'logratio' or 'likelihood', got {score!r}")
        self.backend, self.reference, self.task = verifier_backend, reference_backend, task
        self.score, self.threshold = score, threshold

    def assess(self, examples: Sequence[Example], texts: Sequence[Sequence[str]]):
        from ..verifiers.base import Assessment

        jobs = [(i, t) for i, row in enumerate(texts) for t in row]
        prompts = [self.task.prompt(examples[i]) for i, _ in jobs]
        conts = [t for _, t in jobs]
        lv = self.backend.loglikelihood(prompts, conts) if jobs else []
        lr = (self.reference.loglikelihood(prompts, conts) if jobs and self.score == "logratio"
              else [0.0] * len(jobs))
        verdicts: list[list[Verdict]] = [[] for _ in examples]
        steps: list[list[Step]] = [[] for _ in examples]
        for (i, t), a, b in zip(jobs, lv, lr):
            s = a - b
            verdicts[i].append(Verdict(score=s, correct=s >= self.threshold, reason=f"{self.score}={s:.3f}"))
        for i in range(len(examples)):
            if texts[i]:
                steps[i].append(Step(kind="verify", info={"verifier": self.name, "score": self.score,
                                                          "scores": [v.score for v in verdicts[i]]}))
        return Assessment(verdicts, steps)

    def verify(self, examples, answers):
        from ..verifiers.base import verify_answers

        return verify_answers(self, examples, answers)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
