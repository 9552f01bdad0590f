"""Strategies by name: ``get_strategy('self-consistency:n=16,temperature=0.7')``.

Each built-in is one registration line (``selfimprove.registry``); ``selfimprove ls strategies`` lists them
with their options.
"""

from __future__ import annotations

from ..registry import build_strategy as get_strategy
from ..registry import register_strategy

PAPERS = {
    "self-consistency": (
        "Self-Consistency Improves Chain of Thought Reasoning in Language Models, arXiv:2203.11171"),
    "weighted-sc": (
        "Self-Consistency Improves Chain of Thought Reasoning in Language Models, arXiv:2203.11171"),
    "soft-sc": "Soft Self-Consistency Improves Language Model Agents, arXiv:2402.13212",
    "usc": "Universal Self-Consistency for Large Language Model Generation, arXiv:2311.17311",
    "esc": "Escape Sky-high Cost: Early-stopping Self-Consistency for Multi-step Reasoning, arXiv:2401.10480",
    "asc": (
        "Let's Sample Step by Step: Adaptive-Consistency for Efficient Reasoning and Coding with LLMs, "
        "arXiv:2305.11860"),
    "dsc": (
        "Make Every Penny Count: Difficulty-Adaptive Self-Consistency for Cost-Efficient Reasoning, "
        "arXiv:2408.13457"),
    "best-of-n": "Language Models (Mostly) Know What They Know, arXiv:2207.05221",
    "weighted-best-of-n": "Language Models (Mostly) Know What They Know, arXiv:2207.05221",
    "self-refine": "Self-Refine: Iterative Refinement with Self-Feedback, arXiv:2303.17651",
    "self-correct": "Large Language Models Cannot Self-Correct Reasoning Yet, arXiv:2310.01798",
    "oracle-correct": "Large Language Models Cannot Self-Correct Reasoning Yet, arXiv:2310.01798",
    "gated-correct": "The ART of LLM Refinement: Ask, Refine, and Trust, arXiv:2311.07961",
    "self-debug": "Teaching Large Language Models to Self-Debug, arXiv:2304.05128",
    "progco": "ProgCo: Program Helps Self-Correction of Large Language Models, arXiv:2501.01264",
    "pal": "PAL: Program-aided Language Models, arXiv:2211.10435",
    "codet": "CodeT: Code Generation with Generated Tests, arXiv:2207.10397",
    "beam": "Decomposition Enhances Reasoning via Self-Evaluation Guided Decoding, arXiv:2305.00633",
    "mcts": "Monte Carlo Tree Search Boosts Reasoning via Iterative Preference Learning, arXiv:2405.00451",
    "dvts": ("Scaling LLM Test-Time Compute Optimally can be More Effective than Scaling Model Parameters, "
             "arXiv:2408.03314"),
}
"""Each strategy's paper, 'Title, arXiv:ID' (none for the baselines)."""

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
    "beam": "beam:Beam",
    "mcts": "mcts:MCTS",
    "dvts": "dvts:DVTS",
}.items():
    register_strategy(_name, f"selfimprove.strategies.{_target}", paper=PAPERS.get(_name, ""))

__all__ = ["get_strategy"]
