"""Strategies by name: ``get_strategy('self-consistency:n=16,temperature=0.7')``."""

from __future__ import annotations

import importlib

from ..errors import UserError
from ..specs import build_dataclass, parse_spec

STRATEGIES = {
    "greedy": ("selfimprove.strategies.sample", "Greedy"),
    "sample": ("selfimprove.strategies.sample", "Sample"),
    "self-consistency": ("selfimprove.strategies.self_consistency", "SelfConsistency"),
    "weighted-sc": ("selfimprove.strategies.weighted", "WeightedSC"),
    "soft-sc": ("selfimprove.strategies.weighted", "SoftSC"),
    "usc": ("selfimprove.strategies.weighted", "UniversalSC"),
    "esc": ("selfimprove.strategies.adaptive", "ESC"),
    "asc": ("selfimprove.strategies.adaptive", "ASC"),
    "dsc": ("selfimprove.strategies.adaptive", "DSC"),
    "best-of-n": ("selfimprove.strategies.best_of_n", "BestOfN"),
    "weighted-best-of-n": ("selfimprove.strategies.best_of_n", "WeightedBestOfN"),
    "self-refine": ("selfimprove.strategies.self_refine", "SelfRefine"),
    "self-correct": ("selfimprove.strategies.self_correct", "SelfCorrect"),
    "gated-correct": ("selfimprove.strategies.self_correct", "GatedCorrect"),
    "oracle-correct": ("selfimprove.strategies.self_correct", "OracleCorrect"),
    "beam": ("selfimprove.strategies.beam", "Beam"),
    "mcts": ("selfimprove.strategies.mcts", "MCTS"),
    "dvts": ("selfimprove.strategies.dvts", "DVTS"),
}


def get_strategy(spec: str):
    name, options = parse_spec(spec, "strategy")
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy '{name}'; known: {', '.join(sorted(STRATEGIES))}")
    module, cls_name = STRATEGIES[name]
    return build_dataclass(getattr(importlib.import_module(module), cls_name), options, f"strategy '{name}'")
