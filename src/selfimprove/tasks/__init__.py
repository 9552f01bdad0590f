"""Tasks by name: ``get_task('gsm8k', data=PATH)`` or ``get_task('arithmetic:digits=1-4')``.

Each built-in is one registration line (``selfimprove.registry``); ``selfimprove ls tasks`` lists them.
"""

from __future__ import annotations

from ..registry import build_task as get_task
from ..registry import register_task

register_task("arithmetic", "selfimprove.tasks.arithmetic:ArithmeticTask")
register_task("gsm8k", "selfimprove.tasks.gsm8k:GSM8KTask")
register_task("multiple-choice", "selfimprove.tasks.multiple_choice:MultipleChoiceTask")
register_task("commonsense-qa", "selfimprove.tasks.multiple_choice:MultipleChoiceTask",
              description="CommonsenseQA in the multiple-choice layout (same as 'multiple-choice').",
              alias_of="multiple-choice")
register_task("boolq", "selfimprove.tasks.multiple_choice:BoolQTask")
register_task("jsonl", "selfimprove.tasks.jsonl:JsonlTask")
register_task("humaneval", "selfimprove.tasks.code:HumanEvalTask")
register_task("mbpp", "selfimprove.tasks.code:MbppTask")
register_task("pal-arithmetic", "selfimprove.tasks.pal:PalArithmeticTask")

__all__ = ["get_task"]
