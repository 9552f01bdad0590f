"""The training methods, one file each, registered by name (``--method``; ``selfimprove ls methods``).

Supervised rounds: ``star``, ``rest-em``, ``lmsi``, ``easy-to-hard``, ``no-filter`` (the control); preference
and verifier rounds: ``self-rewarding``, ``scpo``, ``spin``, ``gold-dpo`` (the control), ``v-star``, ``cct``;
code (programs run in the sandbox): ``code-star`` (gold tests) and ``self-code-align`` (the model's own
tests); RL (TRL's GRPO): ``grpo`` (gold, majority, restrain, self-judge rewards) and ``score`` (two-turn
self-correction);
learning from search over steps: ``mcts-dpo``, ``step-dpo`` (step-level pairs) and ``rest-mcts`` (PRM-ranked
search paths, PRM retrained every round).
Each is a ``training.method.Method``; ``register_method(cls)`` adds another (or an entry point in the group
``selfimprove.methods``, see ``selfimprove.registry``).
"""

from __future__ import annotations

from typing import Any

from ... import registry
from ..method import Method
from .cct import CCT
from .code_star import CodeStar
from .easy_to_hard import EasyToHard
from .gold_dpo import GoldDPO
from .grpo import GRPO
from .lmsi import Lmsi
from .mcts_dpo import MCTSDPO
from .no_filter import NoFilter
from .rest_em import RestEM
from .rest_mcts import RestMCTS
from .score import SCoRe
from .scpo import ScPO
from .self_code_align import SelfCodeAlign
from .self_rewarding import SelfRewarding
from .spin import Spin
from .star import Star
from .step_dpo import StepDPO
from .v_star import VStar


def register_method(cls: type[Method]) -> type[Method]:
    """Make ``cls`` runnable by its ``name`` (usable as a class decorator); a name can be registered once."""
    if not (isinstance(cls, type) and issubclass(cls, Method)) or not cls.name:
        raise ValueError(f"register_method needs a Method subclass with a name, got {cls!r}")
    entry = registry.find("methods", cls.name)
    if entry is not None and entry.load() is not cls:
        raise ValueError(f"a method named {cls.name!r} is already registered ({entry.load()!r})")
    registry.register_method(cls.name, cls, paper=cls.paper)
    return cls


def method_classes() -> dict[str, type[Method]]:
    """Every registered method by name (built-ins and plugins)."""
    out = {}
    for entry in registry.entries("methods"):
        cls = entry.load()
        if isinstance(cls, type) and issubclass(cls, Method):
            out[entry.name] = cls
    return out


def get_method(name: str, **options: Any) -> Method:
    """The method ``name`` with ``options`` as its settings."""
    classes = method_classes()
    if name not in classes:
        raise ValueError(f"unknown method {name!r}; one of {', '.join(classes)} "
                         "(see `selfimprove ls methods`)")
    return classes[name](**options)


for _cls in (Star, RestEM, Lmsi, EasyToHard, NoFilter, SelfRewarding, ScPO, Spin, GoldDPO, VStar, CCT,
             CodeStar, SelfCodeAlign, GRPO, SCoRe, MCTSDPO, StepDPO, RestMCTS):
    registry.register_method(_cls.name, _cls, paper=_cls.paper)

__all__ = ["CCT", "GRPO", "MCTSDPO", "CodeStar", "EasyToHard", "GoldDPO", "Lmsi", "NoFilter", "RestEM",
           "RestMCTS", "SCoRe", "ScPO", "SelfCodeAlign", "SelfRewarding", "Spin", "Star", "StepDPO", "VStar",
           "get_method", "method_classes", "register_method"]
