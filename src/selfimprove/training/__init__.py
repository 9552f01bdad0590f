"""Training-time self-improvement: rounds of generate -> verify/vote -> keep -> SFT (TRL), evaluated and resumable.

    from selfimprove.training import LoopConfig, run_loop, round_metrics
    summary = run_loop(LoopConfig(method="lmsi", rounds=2), task, model_dir, run_dir)

Modules: ``config`` (LoopConfig), ``loop`` (the rounds), ``methods`` (STaR, ReST-EM, LMSI, easy-to-hard,
no-filter), ``data`` (traces -> SFT rows), ``sft`` (TRL SFTTrainer wrapper), ``rundir`` (atomic outputs).
torch, transformers and TRL are imported only when a model is trained or loaded.
"""

from .config import LoopConfig
from .loop import eval_traces, round_metrics, run_loop
from .methods import METHODS

__all__ = ["METHODS", "LoopConfig", "eval_traces", "round_metrics", "run_loop"]
