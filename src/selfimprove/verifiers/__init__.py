"""Verifiers by name: the model's own (P(True), verbalised confidence, judges) and gold match.

``selfimprove.registry.build_verifier('ptrue', backend, task)``; ``selfimprove ls verifiers`` lists them.
Strategies and training methods may only use verifiers with ``uses_gold = False``.
"""

from __future__ import annotations

from ..registry import register_verifier

register_verifier("ptrue", "selfimprove.verifiers.ptrue:PTrue")
register_verifier("pik", "selfimprove.verifiers.ptrue:PIK")
register_verifier("verbal", "selfimprove.verifiers.ptrue:VerbalConfidence")
register_verifier("rubric", "selfimprove.verifiers.judge:RubricJudge")
register_verifier("judge", "selfimprove.verifiers.judge:RubricJudge", alias_of="rubric",
                  description="Another name for 'rubric'.")
register_verifier("checklist", "selfimprove.verifiers.judge:ChecklistJudge")
register_verifier("pairwise", "selfimprove.verifiers.judge:PairwiseJudge")

register_verifier("gold", "selfimprove.verifiers.match:GoldMatch")
register_verifier("execution", "selfimprove.verifiers.execution:ExecutionVerifier",
                  description="ORACLE: runs the example's gold tests in the sandbox (code tasks' default).")
register_verifier("self-tests", "selfimprove.verifiers.execution:SelfTests")
register_verifier("program-verify", "selfimprove.verifiers.execution:ProgramVerify")
