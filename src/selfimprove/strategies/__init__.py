"""Strategies by name: ``get_strategy('self-consistency:n=16,temperature=0.7')``.

Each built-in is one registration line (``selfimprove.registry``); ``selfimprove ls strategies`` lists them
with their options.
"""

from __future__ import annotations

from ..registry import build_strategy as get_strategy
from ..registry import register_strategy

for _name, _target in {
    "greedy": "sample:Greedy",
    "sample": "sample:Sample",
    "self-consistency": "self_consistency:SelfConsistency",
    "weighted-sc": "weighted:WeightedSC",
    "soft-sc": "weighted:SoftSC",
    "usc": "weighted:UniversalSC",
    "esc": "adaptive:ESC",
    "asc": "adaptive:ASC",
    "dsc": "adaptive:DSC",
    "best-of-n": "best_of_n:BestOfN",
    "weighted-best-of-n": "best_of_n:WeightedBestOfN",
    "self-refine": "self_refine:SelfRefine",
    "self-correct": "self_correct:SelfCorrect",
    "gated-correct": "self_correct:GatedCorrect",
    "oracle-correct": "self_correct:OracleCorrect",
    "self-debug": "self_debug:SelfDebug",
    "progco": "progco:ProgCo",
    "pal": "pal:PAL",
    "codet": "pal:CodeT",
}.items():
    register_strategy(_name, f"selfimprove.strategies.{_target}")

__all__ = ["get_strategy"]
