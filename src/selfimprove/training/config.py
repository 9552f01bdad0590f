"""``LoopConfig``: every setting of a training run, typed, validated, nested and JSON round-trippable.

    LoopConfig(method="scpo", rounds=3, n=8, sft=SFTSettings(lr=3e-5), dpo=DPOSettings(lr=1e-5))
    LoopConfig(method=Star(rationalize=False))

The run's own settings (rounds, samples ``n``, sampling, data, evaluation, stopping) are fields here; the
method's settings are the fields of its ``Method`` dataclass; how each trainer call trains is ``sft`` /
``dpo`` (``settings.py``); the guard probe of the guarded methods is ``guards``. Each field is declared once,
with its default and docstring, and the CLI's flags and ``--help`` are generated from them
(``cli/options.py``).

A recipe (TOML) or a saved ``config.json`` goes through ``LoopConfig.from_dict``: nested tables ``[sft]``,
``[dpo]``, ``[guards]`` and ``[method]`` (with ``name``) or ``method = "<name>"`` with the method's settings
at the top level. Older flat names are accepted as aliases (``ALIASES``): ``k`` is ``n``, ``lr`` is
``sft.lr``, ``dpo_lr``/``beta``/``loss_type``/``loss_weights`` are ``dpo.*``, ``guard_limit``/``guard_k`` are
``guards.limit``/``guards.n``, ``bon_n`` is v-star's ``eval_n``, ``rationalize_k`` is ``rationalize_n``,
``cct_max_per_kind`` is cct's ``max_per_kind``; a trainer setting at the top level (``epochs``,
``max_steps``, ``batch_size``, ...) sets it for SFT and DPO alike.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .grpo import GRPOSettings
from .method import Method
from .settings import DPOSettings, SFTSettings, TrainerSettings

ALIASES = {"k": "n", "lr": "sft.lr", "dpo_lr": "dpo.lr", "beta": "dpo.beta", "loss_type": "dpo.loss_type",
           "loss_weights": "dpo.loss_weights", "guard_limit": "guards.limit", "guard_k": "guards.n",
           "collapse_stop": "guards.collapse_stop", "eval_correction": "guards.eval_correction",
           "bon_n": "method.eval_n", "rationalize_k": "method.rationalize_n",
           "cct_max_per_kind": "method.max_per_kind", "rl_reward": "method.reward",
           "rl_min_share": "method.min_share"}
"""Older flat setting names and where they live now."""


@dataclass(frozen=True)
class GuardSettings:
    """The guard probe of the guarded methods (self-rewarding, scpo, spin, gold-dpo, v-star, cct)."""

    judge: str | None = None
    """Self-judge the guards probe: ptrue, verbal, rubric, checklist or pairwise (None: the method's own
    judge where it has one, else ptrue)."""
    limit: int = 32
    """Dev examples the guards probe with every evaluated model (0: no probe)."""
    n: int = 4
    """Samples per probed dev example."""
    collapse_stop: bool = True
    """Stop when dev accuracy fell two rounds in a row."""
    eval_correction: bool = False
    """Measure CL / CS / RSS of the self-correction step every round (cct always does)."""

    def __post_init__(self) -> None:
        from .methods.self_rewarding import JUDGES

        if self.judge is not None and self.judge not in JUDGES:
            raise ValueError(f"GuardSettings.judge must be one of {', '.join(JUDGES)} or None, "
                             f"got {self.judge!r}")
        if self.limit < 0:
            raise ValueError(f"GuardSettings.limit must be >= 0 (0: no probe), got {self.limit}")
        if self.n < 1:
            raise ValueError(f"GuardSettings.n must be >= 1 (samples per probed example), got {self.n}")


@dataclass(frozen=True)
class LoopConfig:
    """One training run: method, sampling, data, trainers, evaluation and stopping."""

    method: Method | str = "lmsi"
    """The training method (a name, or a Method with its settings): see ``selfimprove ls methods``."""
    rounds: int = 2
    """Rounds of generate -> build -> train -> evaluate after round 0 (the starting model)."""
    n: int = 8
    """Samples per training example and round."""
    temperature: float = 0.8
    """Sampling temperature of the samples."""
    top_p: float = 1.0
    """Nucleus mass of the samples."""
    max_tokens: int = 128
    """Generation cap per completion; truncated completions are never a training target."""
    target_suffix: str = ""
    """Text appended to every training target before TRL's EOS (e.g. a stop string your format needs)."""
    train_split: str = "train"
    """Split whose examples are self-labelled."""
    train_limit: int | None = 128
    """Examples of the train split used per round (None: all)."""
    rotate: bool = True
    """Use a fresh slice of the train split each round (round r takes examples [r-1 .. r) x train_limit,
    wrapping around) instead of the same examples every round."""
    dev_split: str = "dev"
    """Split whose greedy accuracy drives the patience rule."""
    eval_splits: tuple[str, ...] = ()
    """Further (harder) splits evaluated every round."""
    eval_limit: int | None = 100
    """Examples per evaluated split (None: all)."""
    seed: int = 0
    """Seed of sampling, data order and subsets (round r uses seed x 1000 + r)."""
    patience: int = 2
    """Stop after this many rounds without a dev-accuracy gain over the best so far (0: never)."""
    min_delta: float = 0.0
    """A gain must exceed this to count as improvement."""
    device: str = "auto"
    """Generation device of the hf backend: auto (cuda when available), cpu, cuda, ..."""
    sft: SFTSettings = field(default_factory=SFTSettings)
    """How each SFT call trains (methods whose objective is sft)."""
    dpo: DPOSettings = field(default_factory=DPOSettings)
    """How each DPO call trains (methods whose objective is dpo; V-STaR's verifier)."""
    guards: GuardSettings = field(default_factory=GuardSettings)
    """The guard probe of the guarded methods."""
    rl: GRPOSettings = field(default_factory=GRPOSettings)
    """How each GRPO call trains and which reward it uses (methods whose objective is grpo)."""

    def __post_init__(self) -> None:
        from .methods import get_method

        if isinstance(self.method, str):
            object.__setattr__(self, "method", get_method(self.method))
        _check(isinstance(self.method, Method), "method", self.method, "a method name or a Method")
        _check(self.rounds >= 1, "rounds", self.rounds, ">= 1")
        _check(self.n >= 1, "n", self.n, ">= 1 (the number of samples per example)")
        _check(self.temperature > 0, "temperature", self.temperature, "> 0 (sampling needs it)")
        _check(0 < self.top_p <= 1, "top_p", self.top_p, "in (0, 1]")
        _check(self.max_tokens >= 1, "max_tokens", self.max_tokens, ">= 1")
        for name in ("train_limit", "eval_limit"):
            value = getattr(self, name)
            _check(value is None or value >= 1, name, value, ">= 1 or None")
        _check(math.isfinite(self.min_delta), "min_delta", self.min_delta, "a finite number")
        _check(self.patience >= 0, "patience", self.patience, ">= 0 (0: never stop for lack of gain)")
        object.__setattr__(self, "eval_splits", _tuple(self.eval_splits))
        for name, cls in (("sft", SFTSettings), ("dpo", DPOSettings), ("guards", GuardSettings),
                          ("rl", GRPOSettings)):
            _check(isinstance(getattr(self, name), cls), name, getattr(self, name), f"a {cls.__name__}")
        self.method.validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, nested: ``method`` holds ``name`` and the method's settings."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Method):
                out[f.name] = {"name": value.name, **value.options()}
            elif dataclasses.is_dataclass(value):
                out[f.name] = {k: list(v) if isinstance(v, tuple) else v
                               for k, v in dataclasses.asdict(value).items()}
            else:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], strict: bool = True) -> LoopConfig:
        """A config from nested or flat values (``ALIASES``); unknown names are refused, naming what they
        could be — or, with ``strict=False`` (the saved config of a run written before settings were nested,
        which stored every setting of every method), left out."""
        from .methods import get_method

        values = nest(d, strict)
        method_opts = values.pop("method", {"name": "lmsi"})
        name = method_opts.pop("name", "lmsi")
        for key, sub in (("sft", SFTSettings), ("dpo", DPOSettings), ("guards", GuardSettings),
                         ("rl", GRPOSettings)):
            if key in values:
                values[key] = sub(**values[key])
        try:
            method = get_method(name, **method_opts)
        except TypeError:
            known = [f.name for f in dataclasses.fields(get_method(name))]
            unknown = sorted(set(method_opts) - set(known))
            raise ValueError(f"unknown setting(s) {', '.join(unknown)} of method {name} (its settings: "
                             f"{', '.join(known) or 'none'})") from None
        return cls(method=method, **values)

    def replace(self, **changes: Any) -> LoopConfig:
        return dataclasses.replace(self, **changes)


def nest(d: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    """Flat or nested values → the nested shape of ``LoopConfig`` (``method`` as a table with ``name``);
    a name that is no setting is refused (``strict``) or left out."""
    from .methods import method_classes

    run_fields = {f.name for f in dataclasses.fields(LoopConfig)}
    shared = {f.name for f in dataclasses.fields(TrainerSettings)}
    out: dict[str, Any] = {"method": {}}
    method = d.get("method", "lmsi")
    if isinstance(method, dict):
        out["method"] = dict(method)
    elif isinstance(method, Method):
        out["method"] = {"name": method.name, **method.options()}
    else:
        out["method"]["name"] = method
    name = out["method"].get("name", "lmsi")
    classes = method_classes()
    method_fields = {f.name for f in dataclasses.fields(classes[name])} if name in classes else set()
    for key, value in d.items():
        if key == "method":
            continue
        key = ALIASES.get(key, key)
        if not strict and key.startswith("method.") and key[7:] not in method_fields:
            continue
        if key in ("judge",):  # self-rewarding's judge; otherwise the guards'
            key = "method.judge" if "judge" in method_fields else "guards.judge"
        if key == "patience" and value is None:
            value = 0
        if key in ("sft", "dpo", "guards", "rl") and isinstance(value, dict):
            out.setdefault(key, {}).update(value)
        elif "." in key:
            group, sub = key.split(".", 1)
            out.setdefault(group, {})[sub] = value
        elif key in run_fields:
            out[key] = value
        elif key in shared:  # a trainer setting at the top level sets it for both trainers
            out.setdefault("sft", {})[key] = value
            out.setdefault("dpo", {})[key] = value
        elif key in method_fields:
            out["method"][key] = value
        elif strict:
            raise ValueError(f"unknown setting {key!r}" + (f" for method {name}" if name in classes else ""))
    for key in ("reward", "min_share"):  # GRPO's reward was an rl setting before it was the method's
        if key in out.get("rl", {}):
            out["method"].setdefault(key, out["rl"].pop(key))
    return out


def _tuple(value) -> tuple:
    return (value,) if isinstance(value, str) else tuple(value)


def _check(ok: bool, name: str, value: Any, want: str) -> None:
    if not ok:
        raise ValueError(f"LoopConfig.{name} must be {want}, got {value!r}")
