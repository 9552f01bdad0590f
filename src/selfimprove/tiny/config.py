"""``TinyConfig``: everything that defines a built-in model — its size, its pretraining and its task mixture.

The built-in names (``tiny``, ``micro``) are presets of this dataclass; ``resolve_model`` trains a preset on
first use. A change to any field changes ``fingerprint()``, so a cached model built from an older preset is
retrained rather than silently reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

FORMAT_VERSION = 1
"""Bumped when the task's text format changes; part of the fingerprint."""


@dataclass(frozen=True)
class TinyConfig:
    """A small Llama and how to pretrain it on the arithmetic family."""

    hidden: int = 128
    """Hidden size (embedding width)."""
    layers: int = 2
    """Transformer blocks."""
    heads: int = 4
    """Attention heads; must divide ``hidden``."""
    ffn: int = 512
    """Width of the SwiGLU feed-forward layer."""
    max_positions: int = 512
    """Longest sequence the model is configured for (prompt + completion, in characters)."""
    terms: tuple[int, int] = (2, 4)
    """In-range number of operands per problem (the difficulty knob)."""
    digits: tuple[int, int] = (1, 2)
    """Digits per operand."""
    beyond_terms: int = 1
    """Problems up to this many terms beyond ``terms`` are mixed into pretraining (easy-to-hard needs a
    non-zero start one step beyond); 0 disables it."""
    beyond_frac: float = 0.1
    """Fraction of pretraining problems drawn from the beyond-range term counts."""
    mix: dict[str, float] = field(default_factory=lambda: {"solve": 0.7, "verify": 0.18, "correct": 0.07,
                                                           "hint": 0.05})
    """Share of pretraining sequences per format: solve, verify, correct, hint."""
    orders: str = "free"
    """Solution orders taught besides the question order: 'free' (any permutation) or 'rotate' (start at any
    operand, then follow the question cyclically; it learned several times slower in a trial)."""
    question_order: float = 0.5
    """Fraction of training solutions that add the operands in question order (the rest take a uniformly
    random order). Greedy decoding then has one dominant, reliable path, while sampled chains still explore
    other orders; with uniform orders only, greedy often re-used an operand (the choice among the unused ones
    is a near-tie that any leak wins)."""
    solve_first: float = 0.5
    """Fraction of the steps, at the start, that train on the solve format alone: the other formats build on
    its copy-and-add skills, and mixing them in from the start delayed learning several-fold in a trial."""
    steps: int = 900
    """Optimizer steps."""
    batch_size: int = 32
    """Sequences per step."""
    lr: float = 1.5e-3
    """Peak learning rate (AdamW); 3e-3 learned the copy step several times slower in a trial."""
    warmup: float = 0.05
    """Fraction of steps of linear warm-up."""
    final_lr_frac: float = 0.1
    """Learning rate at the end of the cosine decay, as a fraction of ``lr``."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    seed: int = 0
    """Seed for initialisation and for the synthetic data stream."""
    eval_examples: int = 200
    """Held-out dev problems scored greedily at the end (recorded in the metadata)."""
    threads: int | None = None
    """torch.set_num_threads during pretraining; None leaves torch's default."""
    verify_format: int = 1
    """Version of the verify/correct formats taught (``ArithmeticTask(verify=...)``): 1 asks for a bare
    verdict or answer (not learned at this size), 2 re-solves and compares digit by digit
    (``tiny-verify``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", tuple(self.terms))
        object.__setattr__(self, "digits", tuple(self.digits))
        object.__setattr__(self, "mix", dict(self.mix))
        if self.hidden % self.heads:
            raise ValueError(f"TinyConfig.hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        for name in ("hidden", "layers", "heads", "ffn", "steps", "batch_size", "eval_examples"):
            if getattr(self, name) < 1:
                raise ValueError(f"TinyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.lr < 1:
            raise ValueError(f"TinyConfig.lr must be in (0, 1), e.g. 3e-3; got {self.lr}")
        if not 0 <= self.warmup < 1 or not 0 <= self.final_lr_frac <= 1:
            raise ValueError("TinyConfig.warmup must be in [0, 1) and final_lr_frac in [0, 1]")
        if self.orders not in ("rotate", "free"):
            raise ValueError(f"TinyConfig.orders must be 'rotate' or 'free', got {self.orders!r}")
        if not 0 <= self.question_order <= 1:
            raise ValueError(f"TinyConfig.question_order must be in [0, 1], got {self.question_order}")
        if not 0 <= self.solve_first <= 1:
            raise ValueError(f"TinyConfig.solve_first must be in [0, 1], got {self.solve_first}")
        if self.verify_format not in (1, 2):
            raise ValueError(f"TinyConfig.verify_format must be 1 or 2, got {self.verify_format}")
        if not 0 <= self.beyond_frac < 1 or self.beyond_terms < 0:
            raise ValueError("TinyConfig.beyond_frac must be in [0, 1) and beyond_terms >= 0")
        unknown = set(self.mix) - {"solve", "verify", "correct", "hint"}
        if unknown or self.mix.get("solve", 0) <= 0 or any(w < 0 for w in self.mix.values()):
            raise ValueError(f"TinyConfig.mix needs a positive 'solve' weight and only the formats solve, "
                             f"verify, correct, hint with weights >= 0; got {self.mix}")

    def replace(self, **changes) -> TinyConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """A short hash of every field that changes the trained model (``threads`` does not)."""
        d = self.to_dict()
        d.pop("threads")
        if d["verify_format"] == 1:  # the field came later: format-1 presets keep their fingerprints
            d.pop("verify_format")
        d["format_version"] = FORMAT_VERSION
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    def task_options(self) -> dict[str, str]:
        """The arithmetic task this model is trained for, as ``--task arithmetic:...`` options."""
        options = {"terms": f"{self.terms[0]}-{self.terms[1]}",
                   "digits": f"{self.digits[0]}-{self.digits[1]}"}
        if self.verify_format != 1:
            options["verify"] = str(self.verify_format)
        return options


PRESETS: dict[str, TinyConfig] = {
    "tiny": TinyConfig(),
    "tiny-verify": TinyConfig(verify_format=2, steps=2000, solve_first=0.3,
                              mix={"solve": 0.5, "verify": 0.4, "correct": 0.05, "hint": 0.05}),
    "micro": TinyConfig(hidden=64, layers=2, heads=4, ffn=256, terms=(2, 3), digits=(1, 2), steps=150,
                        batch_size=32, lr=5e-3, eval_examples=50),
}
"""Built-in model names: ``tiny-verify`` (the same model and task with verify/correct format 2, 2,000 steps,
~2 minutes: its verify format carries a real signal, and in-range solve accuracy is near 100 %, so use it on
harder splits such as ``test-hard``), ``tiny`` (the demo's model: 1.5M training tokens, ~80 s at ~19k tokens/s
on one idle core) and ``micro`` (seconds; for tests — it learns the format but not much arithmetic)."""
