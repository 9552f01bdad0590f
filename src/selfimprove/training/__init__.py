"""Training-time self-improvement: rounds of generate -> verify/vote/judge -> keep or pair -> SFT or DPO (TRL),
evaluated and resumable.

    from selfimprove.training import LoopConfig, run_loop, round_metrics
    summary = run_loop(LoopConfig(method="lmsi", rounds=2), task, model_dir, run_dir)

    from selfimprove.training import PrefConfig, run_pref_loop
    summary = run_pref_loop(PrefConfig(method="scpo", rounds=3), task, model_dir, run_dir)

Modules: ``config`` (LoopConfig), ``loop`` (the rounds), ``methods`` (STaR, ReST-EM, LMSI, easy-to-hard,
no-filter), ``data`` (traces -> SFT rows), ``sft`` (TRL SFTTrainer wrapper), ``rundir`` (atomic outputs);
the preference methods: ``preferences`` (traces -> preference pairs / CCT rows), ``dpo`` (TRL DPOTrainer with
per-pair weights, V-STaR's verifier), ``pref_loop`` (Self-Rewarding, ScPO, SPIN, gold-labelled DPO, V-STaR,
CCT on the same rounds), ``guards`` (judge reliability and collapse measurements).
torch, transformers and TRL are imported only when a model is trained or loaded.
"""

from . import guards
from .config import LoopConfig
from .dpo import DPOResult, DPOSettings, DPOVerifier, train_dpo
from .loop import eval_traces, round_metrics, run_loop
from .methods import METHODS
from .pref_loop import PREF_METHODS, PrefConfig, run_pref_loop
from .preferences import (
    PreferencePair,
    Provenance,
    cct_rows,
    correctness_pairs,
    meta_judge_pairs,
    references,
    scpo_pairs,
    self_rewarding_pairs,
    spin_pairs,
)

__all__ = [
    "METHODS", "PREF_METHODS", "DPOResult", "DPOSettings", "DPOVerifier", "LoopConfig", "PrefConfig",
    "PreferencePair", "Provenance", "cct_rows", "correctness_pairs", "eval_traces", "guards", "meta_judge_pairs",
    "references", "round_metrics", "run_loop", "run_pref_loop", "scpo_pairs", "self_rewarding_pairs",
    "spin_pairs", "train_dpo",
]
