"""Training-time self-improvement: rounds of generate -> verify / vote / judge -> build -> SFT or DPO (TRL) ->
evaluate, resumable, for any training method.

    from selfimprove.training import LoopConfig, run_loop, round_metrics
    summary = run_loop(LoopConfig(method="scpo", rounds=3), task, model_dir, run_dir)

Modules: ``method`` (the Method contract and its building blocks), ``methods/`` (one file per method: STaR,
ReST-EM, LMSI, easy-to-hard, no-filter, Self-Rewarding, ScPO, SPIN, gold-labelled DPO, V-STaR, CCT),
``loop`` (the one round loop), ``state`` (what it keeps between phases), ``config`` (LoopConfig),
``settings`` (SFT / DPO trainer settings), ``data`` and ``preferences`` (traces -> SFT rows / preference
pairs), ``sft`` and ``dpo`` (TRL wrappers), ``guards`` (judge reliability and collapse), ``rundir`` (atomic
outputs). torch, transformers and TRL are imported only when a model is trained or loaded.
"""

from . import guards
from .config import GuardSettings, LoopConfig
from .dpo import DPOResult, DPOVerifier, train_dpo
from .loop import eval_traces, round_metrics, run_loop
from .method import Built, Method
from .methods import get_method, method_classes, register_method
from .preferences import PreferencePair, Provenance
from .settings import DPOSettings, SFTSettings

__all__ = [
    "Built", "DPOResult", "DPOSettings", "DPOVerifier", "GuardSettings", "LoopConfig", "Method",
    "PreferencePair", "Provenance", "SFTSettings", "eval_traces", "get_method", "guards", "method_classes",
    "register_method",
    "round_metrics", "run_loop", "train_dpo",
]
