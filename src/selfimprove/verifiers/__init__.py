"""Verifiers by name: the model's own (P(True), verbalised confidence, judges) and gold match.

``selfimprove.registry.build_verifier('ptrue', backend, task)``; ``selfimprove ls verifiers`` lists them.
Strategies and training methods may only use verifiers with ``uses_gold = False``.
"""

from __future__ import annotations

from ..registry import register_verifier

register_verifier("ptrue", "selfimprove.verifiers.ptrue:PTrue",
                  paper="Language Models (Mostly) Know What They Know, arXiv:2207.05221")
register_verifier("pik", "selfimprove.verifiers.ptrue:PIK",
                  paper="Language Models (Mostly) Know What They Know, arXiv:2207.05221")
register_verifier("verbal", "selfimprove.verifiers.ptrue:VerbalConfidence")
register_verifier("rubric", "selfimprove.verifiers.judge:RubricJudge",
                  paper="Self-Rewarding Language Models, arXiv:2401.10020")
register_verifier("judge", "selfimprove.verifiers.judge:RubricJudge", alias_of="rubric",
                  description="Another name for 'rubric'.")
register_verifier("checklist", "selfimprove.verifiers.judge:ChecklistJudge",
                  paper="TICKing All the Boxes: Generated Checklists Improve LLM Evaluation and Generation, "
                        "arXiv:2410.03608")
register_verifier("pairwise", "selfimprove.verifiers.judge:PairwiseJudge")
register_verifier("prm", "selfimprove.verifiers.prm:PRMVerifier",
                  paper="Math-Shepherd: Verify and Reinforce LLMs Step-by-step without Human Annotations, "
                        "arXiv:2312.08935")

register_verifier("gold", "selfimprove.verifiers.match:GoldMatch")
register_verifier("execution", "selfimprove.verifiers.execution:ExecutionVerifier",
                  description="ORACLE: runs the example's gold tests in the sandbox (code tasks' default).")
register_verifier("self-tests", "selfimprove.verifiers.execution:SelfTests",
                  paper="CodeT: Code Generation with Generated Tests, arXiv:2207.10397")
register_verifier("program-verify", "selfimprove.verifiers.execution:ProgramVerify",
                  paper="ProgCo: Program Helps Self-Correction of Large Language Models, arXiv:2501.01264")
