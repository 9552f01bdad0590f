"""The Task contract: every hook a strategy, verifier, training method or command calls on a task, declared
once here with its default.

A task must define ``name``, ``examples(split)``, ``prompt(example)`` and ``extract(text)``; everything else
has a default that works for any task. A task owns its answer format: ``extract`` turns a completion's text
into a normalised answer string, or ``None`` when it cannot be parsed, and ``equivalent`` decides whether two
answers are the same (voting and scoring share it, so the two never disagree). A task with its own prompt
formats for a model's second look (verify, correct, ...) returns them from ``formats()``; the generic English
templates of ``selfimprove.prompts`` fill in the rest.

Register a new task with ``selfimprove.registry.register_task`` (then ``--task NAME`` works).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import UserError
from ..records import Example

if TYPE_CHECKING:
    from ..prompts import TaskFormats
    from ..verifiers.base import Verifier


class Task:
    """Base class of every task; subclasses override what they need."""

    name: str = "task"
    """The registered name (``--task NAME``)."""
    stop: tuple[str, ...] = ()
    """Stop strings that end an answer in this task's prompt format."""
    code: str | None = None
    """What code the task runs in the sandbox: None (none), 'program' (answers are programs judged by tests,
    e.g. humaneval; ``program``, ``run``, ``run_gold`` and ``tests_job`` are defined) or 'program-aided'
    (answers are the values programs print, e.g. pal-arithmetic; ``execute`` is defined)."""
    unsafe_exec: bool = False
    """Code tasks: run programs without the sandbox's isolation (``--unsafe-exec``); every report says so."""
    verify_format: int | None = None
    """The version of the task's own verify/correct format, where a built-in model was trained on one; a model
    that learned another version is refused (``tiny.models.check_task_formats``). None: no versioned
    format."""

    # ---- required -----------------------------------------------------------------------------------------
    def examples(self, split: str) -> list[Example]:
        """The examples of ``split`` (``train``, ``dev``, ``test``, ...), in a fixed order."""
        raise NotImplementedError(f"task {self.name!r} must define examples(split)")

    def prompt(self, example: Example) -> str:
        """The prompt that asks the model to solve ``example`` (never containing its gold answer)."""
        raise NotImplementedError(f"task {self.name!r} must define prompt(example)")

    def extract(self, text: str) -> str | None:
        """The normalised answer in a completion's text, or None when it cannot be parsed."""
        raise NotImplementedError(f"task {self.name!r} must define extract(text)")

    def complete_part(self, text: str) -> str | None:
        """The part of a completion cut at max_tokens that is already complete and may carry an answer (a code
        task: everything up to a closed code block; a yes/no task whose reply starts with its answer: the
        whole text), or None. Default None: a truncated text (a chain of thought) has not reached its
        answer."""
        return None

    def extract_many(self, texts: Sequence[str]) -> list[str | None]:
        """``extract`` of many texts at once (a task that runs programs to read answers batches them here).
        Default: ``extract`` each."""
        return [self.extract(t) for t in texts]

    # ---- construction and identity ------------------------------------------------------------------------
    @classmethod
    def from_options(cls, options: dict[str, str], data: str | None = None) -> Task:
        """Build from ``--task name:key=value,...`` options (each converted to its ``__init__`` parameter's
        type) and ``--data PATH`` (passed as ``data`` when ``__init__`` takes it)."""
        from ..registry import build

        takes_data = "data" in inspect.signature(cls.__init__).parameters
        if data is not None and not takes_data:
            raise UserError(f"task '{cls.name}' takes no --data")
        return build(cls, options, f"task '{cls.name}'", **({"data": data} if takes_data else {}))

    def describe(self) -> str:
        """The task with its settings, as a spec (``arithmetic:op=add,terms=2-4,...``); recorded with runs."""
        return self.name

    # ---- answers ------------------------------------------------------------------------------------------
    def equivalent(self, a: str | None, b: str | None) -> bool:
        """Whether two extracted answers are the same (exact match of normalised strings by default)."""
        return a is not None and b is not None and a == b

    def check(self, example: Example, answer: str | None) -> bool | None:
        """Gold check of one answer: None when the answer is unparseable or there is no gold label."""
        if answer is None or example.answer is None:
            return None
        return self.equivalent(answer, example.answer)

    def entry_point(self, example: Example) -> str | None:
        """The function a program for ``example`` must define, where the task names one (code tasks)."""
        return None

    def check_batch(self, pairs: Sequence[tuple[Example, str | None]]) -> list[bool | None]:
        """``check`` of many (example, answer) pairs at once (a task that runs tests batches them here).
        Default: ``check`` each."""
        return [self.check(e, a) for e, a in pairs]

    def default_verifier(self) -> Verifier:
        """The verifier runs are scored with: gold match through ``equivalent``."""
        from ..verifiers.match import GoldMatch

        return GoldMatch(self)

    def plausible(self, example: Example, answer: str) -> bool:
        """Whether ``answer`` is plausible for ``example`` without knowing the gold answer (easy-to-hard's
        length filter drops implausible pseudo-labels). Default: every answer is."""
        return True

    def solution(self, example: Example) -> str | None:
        """A gold solve completion for ``example`` (what the model should write after ``prompt``), or None
        when the task has none. Default: ``example.meta['solution']`` when the data carries one."""
        value = example.meta.get("solution")
        return None if value is None else str(value)

    def example_from_row(self, row: dict, path, lineno: int, default_id: str) -> Example:
        """One example from a data-file row (``selfimprove score`` reads completions files with it)."""
        raise UserError(f"task '{self.name}' cannot read gold answers from completion rows; use gsm8k or "
                        "jsonl:question=...,answer=...", path=str(path), line=lineno)

    # ---- prompt formats for the model's second look -------------------------------------------------------
    def formats(self) -> TaskFormats:
        """The prompt builders and parsers for verify, correct, feedback, refine, P(IK) and confidence.
        Default: the generic English templates (``selfimprove.prompts``); a task with formats of its own
        passes them to ``prompts.task_formats``."""
        from ..prompts import task_formats

        return task_formats(self)

    def hint_prompt(self, example: Example, answer: str | None = None) -> str:
        """The solve prompt with ``answer`` (the gold answer by default) given as a hint (STaR
        rationalisation). Default: a hint line before the prompt."""
        from ..chat import before_last_user

        answer = example.answer if answer is None else answer
        return before_last_user(self.prompt(example), f"hint: the answer is {answer}\n")

    def correct_target(self, example: Example, answer: str | None = None) -> str | None:
        """What the task's own correct format writes for a right reviewed answer (``answer``, the gold one by
        default), to train self-correction on; None when the task has no correct format of its own."""
        return None

    # ---- steps, for search over partial solutions ----------------------------------------------------------
    def step_format(self):
        """How a completion splits into reasoning steps and where a step ends (``tasks.steps.StepFormat``):
        the delimiter next-step generation stops at, and the pattern of a finished answer. Default: one line
        per step, a path ends when the model stops (``tasks.steps.LINES``)."""
        from .steps import LINES

        return LINES

    # ---- difficulty ----------------------------------------------------------------------------------------
    def pool_split(self, split: str) -> str | None:
        """A training pool at the difficulty of held-out ``split``, disjoint from every held-out split
        (easy-to-hard pseudo-labels it and is evaluated on ``split``); None when the task has none."""
        return None

    def harder_splits(self, n: int) -> tuple[str, ...]:
        """``n`` held-out splits, each one difficulty step beyond the last, starting one step beyond the
        training range (easy-to-hard's default schedule); () when the task has no difficulty knob."""
        return ()

    def extra_eval_splits(self) -> tuple[str, ...]:
        """Held-out splits a training run evaluates besides its dev split by default (e.g. one step
        harder)."""
        return ()


TaskBase = Task
"""The former name of ``Task``."""


def pick_shots(task, k: int, split: str = "train") -> list:
    """The first ``k`` examples of ``split`` (worked examples for a few-shot prompt); ``[]`` when ``k`` is 0.
    Shots never come from the evaluated split, so an example never sees its own answer."""
    if k <= 0:
        return []
    from ..errors import UserError

    try:
        shots = task.examples(split)[:k]
    except (UserError, OSError) as e:
        raise UserError(f"task '{task.name}': shots={k} takes worked examples from the '{split}' "
                        f"split, which could not be read ({e}); give a data folder with {split}.jsonl or "
                        "use shots=0",
                        field="shots") from None
    if len(shots) < k:
        raise UserError(f"task '{task.name}': shots={k} but the '{split}' split has {len(shots)} examples",
                        field="shots")
    return shots


def limit_examples(examples: Sequence[Example], limit: int | None) -> list[Example]:
    return list(examples if limit is None else examples[:limit])
