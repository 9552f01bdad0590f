"""The training methods, one file each, by name (``--method``): ``register_method`` adds one.

Supervised rounds: ``star``, ``rest-em``, ``lmsi``, ``easy-to-hard``, ``no-filter`` (the control); preference
and verifier rounds: ``self-rewarding``, ``scpo``, ``spin``, ``gold-dpo``, ``v-star``, ``cct``. Each class is a
``training.method.Method``.
"""

from __future__ import annotations

from typing import Any

from ..method import Method
from .cct import CCT
from .easy_to_hard import EasyToHard
from .gold_dpo import GoldDPO
from .lmsi import Lmsi
from .no_filter import NoFilter
from .rest_em import RestEM
from .scpo import ScPO
from .self_rewarding import SelfRewarding
from .spin import Spin
from .star import Star
from .v_star import VStar

METHODS: dict[str, type[Method]] = {}
"""Registered methods by name."""


def register_method(cls: type[Method]) -> type[Method]:
    """Make ``cls`` runnable by its ``name`` (usable as a class decorator); a name can be registered once."""
    if not (isinstance(cls, type) and issubclass(cls, Method)) or not cls.name:
        raise ValueError(f"register_method needs a Method subclass with a name, got {cls!r}")
    if METHODS.get(cls.name, cls) is not cls:
        raise ValueError(f"a method named {cls.name!r} is already registered ({METHODS[cls.name].__qualname__})")
    METHODS[cls.name] = cls
    return cls


def get_method(name: str, **options: Any) -> Method:
    """The method ``name`` with ``options`` as its settings."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; one of {', '.join(METHODS)}")
    return METHODS[name](**options)


for _cls in (Star, RestEM, Lmsi, EasyToHard, NoFilter, SelfRewarding, ScPO, Spin, GoldDPO, VStar, CCT):
    register_method(_cls)

__all__ = [
    "CCT",
    "METHODS",
    "EasyToHard",
    "GoldDPO",
    "Lmsi",
    "NoFilter",
    "RestEM",
    "ScPO",
    "SelfRewarding",
    "Spin",
    "Star",
    "VStar",
    "get_method",
    "register_method",
]
