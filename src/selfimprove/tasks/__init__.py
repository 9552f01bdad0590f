"""Tasks by name: ``get_task('gsm8k', data=PATH)`` or ``get_task('arithmetic:digits=1-4')``."""

from __future__ import annotations

from ..errors import UserError
from ..specs import parse_spec

TASKS = {
    "arithmetic": ("selfimprove.tasks.arithmetic", "ArithmeticTask"),
    "gsm8k": ("selfimprove.tasks.gsm8k", "GSM8KTask"),
    "multiple-choice": ("selfimprove.tasks.multiple_choice", "MultipleChoiceTask"),
    "commonsense-qa": ("selfimprove.tasks.multiple_choice", "MultipleChoiceTask"),
    "boolq": ("selfimprove.tasks.multiple_choice", "BoolQTask"),
    "jsonl": ("selfimprove.tasks.jsonl", "JsonlTask"),
}


def get_task(spec: str, data: str | None = None):
    """A task from ``name[:key=value,...]``; ``data`` is the path for file-backed tasks."""
    import importlib

    name, options = parse_spec(spec, "task")
    if name not in TASKS:
        raise UserError(f"unknown task '{name}'; known: {', '.join(sorted(TASKS))}")
    module, cls_name = TASKS[name]
    cls = getattr(importlib.import_module(module), cls_name)
    if name == "arithmetic":
        if data is not None:
            raise UserError("task 'arithmetic' is synthetic and takes no --data")
        return cls.from_options(options)
    return cls.from_options(options, data=data)
