"""Tasks by name: ``get_task('gsm8k', data=PATH)`` or ``get_task('arithmetic:digits=1-4')``.

Each built-in is one registration line (``selfimprove.registry``); ``selfimprove ls tasks`` lists them.
"""

from __future__ import annotations

from ..registry import build_task as get_task
from ..registry import register_task

register_task("arithmetic", "selfimprove.tasks.arithmetic:ArithmeticTask")
register_task("gsm8k", "selfimprove.tasks.gsm8k:GSM8KTask",
              paper="Training Verifiers to Solve Math Word Problems, arXiv:2110.14168")
register_task("multiple-choice", "selfimprove.tasks.multiple_choice:MultipleChoiceTask")
register_task("commonsense-qa", "selfimprove.tasks.multiple_choice:MultipleChoiceTask",
              paper="CommonsenseQA: A Question Answering Challenge Targeting Commonsense Knowledge, "
                    "arXiv:1811.00937",
              description="CommonsenseQA in the multiple-choice layout (same as 'multiple-choice').",
              alias_of="multiple-choice")
register_task("boolq", "selfimprove.tasks.multiple_choice:BoolQTask",
              paper="BoolQ: Exploring the Surprising Difficulty of Natural Yes/No Questions, "
                    "arXiv:1905.10044")
register_task("jsonl", "selfimprove.tasks.jsonl:JsonlTask")
register_task("word-problems", "selfimprove.tasks.word_problems:WordProblemsTask",
              description="One-step arithmetic word problems, generated (no data files): for real "
                          "chat models.")
register_task("humaneval", "selfimprove.tasks.code:HumanEvalTask",
              paper="Evaluating Large Language Models Trained on Code, arXiv:2107.03374")
register_task("mbpp", "selfimprove.tasks.code:MbppTask",
              paper="Program Synthesis with Large Language Models, arXiv:2108.07732")
register_task("pal-arithmetic", "selfimprove.tasks.pal:PalArithmeticTask",
              paper="PAL: Program-aided Language Models, arXiv:2211.10435")
register_task("pal-word-problems", "selfimprove.tasks.pal:PalWordProblemsTask",
              paper="PAL: Program-aided Language Models, arXiv:2211.10435")

__all__ = ["get_task"]
