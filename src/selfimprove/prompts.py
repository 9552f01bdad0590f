"""Prompt formats for the model's second look: verify, feedback, refine, correct, P(IK), verbalised
confidence, judges and Universal Self-Consistency.

A task that has its own format for a step (the built-in arithmetic task's trained verify and correct prompts,
its verdict parser and verdict continuations) passes it to ``task_formats`` from its ``formats()`` hook; the
generic English templates below fill in the rest. ``formats(task)`` is what every strategy and verifier calls,
so they all agree on which prompt a step sends.

Fairness: the generic verify, feedback and correct prompts never presuppose that the answer
is wrong; only ``oracle_correct`` says so, and only the oracle strategy uses it. No template reads
``Example.answer`` or ``Example.meta``: the gold answer never reaches a prompt from here.

The generic second look is a follow-up turn (``follow_up``): the task's prompt, the candidate as the model's
own reply, then the question, as one conversation (``selfimprove.chat``). A chat model gets three real turns
through its chat template, so it is asked about *its* answer in the form it was trained on; a model without a
template gets the same turns as plain text. Judges and USC end with a short assistant prefix ("Score:",
"Better response:", "... is Response") so that the next token is the choice, read by probability
(``verifiers.choice``) or parsed.

Not covered: few-shot demonstrations of the second look, languages other than English.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .answers import extract_yes_no
from .records import Example

VERIFY = "Is your answer above correct? Reply with Yes or No."
FEEDBACK = ("Check your answer above step by step. If it is correct, reply with exactly \"No issues.\" If it "
            "contains a mistake, say what the mistake is.")
REFINE = ("Feedback on your answer: {feedback}\n\nWrite your answer again, fixing the problems the feedback "
          "names. End with the final answer in the same format as before.")
CORRECT = ("Review your answer above. If it is correct, write it again; if it contains a mistake, write a "
           "corrected answer. End with the final answer in the same format as before.")
ORACLE_CORRECT = ("Your answer above is incorrect. Find the mistake and write a corrected answer. End "
                  "with the final answer in the same format as before.")
PIK = ("{question}\n\nDo you know the answer to this question, so that you would answer it correctly? Reply "
       "with Yes or No.")
CONFIDENCE = "How confident are you that your answer above is correct? Reply with a number from 0 to 100."
NO_ISSUES = re.compile(r"\bno (?:issues|mistakes|errors|problems)\b|\bnothing to (?:fix|correct)\b",
                       re.IGNORECASE)

RUBRIC = """Review the user's question and the corresponding response using the additive 5-point scoring \
system described below. Points are accumulated based on the satisfaction of each criterion:
- Add 1 point if the response is relevant and provides some information related to the user's inquiry, even \
if it is incomplete or contains some irrelevant content.
- Add another point if the response addresses a substantial portion of the user's question, but does not \
completely resolve the query or provide a direct answer.
- Award a third point if the response answers the basic elements of the user's question in a useful way.
- Grant a fourth point if the response addresses the user's question directly and comprehensively, and is \
well-organized and helpful, even if there is slight room for improvement in clarity, conciseness or focus.
- Bestow a fifth point for a response that is impeccably tailored to the user's question, without extraneous \
information, reflecting expert knowledge, and demonstrating a high-quality, correct and insightful answer.

User: {question}
<response>{response}</response>

After examining the user's question and the response:
- Briefly justify your total score, up to 100 words.
- Conclude with the score using the format: "Score: <total points>"
"""
RUBRIC_SCORE = RUBRIC.split("After examining")[0] + """\
After examining the user's question and the response, reply with the total points only: a single digit \
from 0 to 5."""
RUBRIC_PREFIX = "Score:"
PAIRWISE = """Which response answers the user's question better? Judge correctness first, then helpfulness.

User: {question}
<response A>{first}</response A>
<response B>{second}</response B>

Reply with a single letter, A or B."""
PAIRWISE_PREFIX = "Better response:"
CHECKLIST_MAKE = """Write a checklist of yes/no questions that a response to the instruction below must \
satisfy to be fully correct. Write one question per line, each starting with "- ".

Instruction: {question}
Checklist:
"""
CHECKLIST_ANSWER = """Instruction: {question}
<response>{response}</response>

Answer each question about the response with YES or NO, one per line, in the form "1. YES".
{checklist}
Answers:
"""
USC = """I have generated the following responses to the question above:
{responses}

Evaluate these responses and select the most consistent one based on majority consensus. Reply with the \
number of that response."""
USC_PREFIX = "The most consistent response is Response"


@dataclass(frozen=True)
class TaskFormats:
    """The prompt builders and parsers of one task, its own where it has them, generic otherwise."""

    verify: Callable[[Example, str], str]
    """(example, candidate text) → a prompt whose continuation is a yes/no verdict."""
    correct: Callable[[Example, str], str]
    """(example, candidate text) → a fair prompt for a reviewed answer (no hint that it is wrong)."""
    oracle_correct: Callable[[Example, str], str]
    """(example, candidate text) → a correction prompt for an answer known to be wrong (oracle use only)."""
    feedback: Callable[[Example, str], str]
    """(example, candidate text) → a prompt for feedback on the candidate."""
    refine: Callable[[Example, str, str], str]
    """(example, candidate text, feedback text) → a prompt for a refined answer."""
    pik: Callable[[Example], str]
    """example → a yes/no prompt asking whether the model knows the answer, before it answers."""
    confidence: Callable[[Example, str], str]
    """(example, candidate text) → a prompt for a verbalised 0–100 confidence."""
    parse_verdict: Callable[[str], bool | None]
    """A verdict text → True (yes), False (no) or None (unparseable)."""
    no_issues: Callable[[str], bool]
    """A feedback text → True when it says there is nothing to fix (Self-Refine's stop signal)."""
    yes_no: tuple[tuple[str, ...], tuple[str, ...]]
    """The verdict continuations scored for P(True): the forms of 'yes', then those of 'no'."""
    feedback_tokens: int
    """Token budget for a feedback step (a verdict needs few tokens, prose feedback many)."""
    feedback_stop: tuple[str, ...]
    """Where a feedback step ends (a verdict at the line's end, prose feedback at a blank line)."""
    own: tuple[str, ...]
    """Which formats came from the task itself."""
    verify_think: str | None = None
    """Where the task's verify format ends its rationale and gives its verdict (``task.verify_think``), or
    None when the verdict comes at once. P(True) then generates the rationale greedily first."""


def formats(task) -> TaskFormats:
    """The formats every strategy and verifier uses for ``task``: ``task.formats()``."""
    return task.formats()


def task_formats(task, *, verify=None, correct=None, feedback=None, refine=None, pik=None, confidence=None,
                 parse_verdict=None, verdict_continuations=None,
                 verify_think: str | None = None) -> TaskFormats:
    """A task's formats: the ones it passes (``verify``, ``correct``, ... as in ``TaskFormats``), the generic
    templates otherwise. When a task can verify and correct but has no feedback format, its verdict is the
    feedback: 'yes' means no issues, and refining is its correct format. ``verify_think`` counts only with the
    task's own ``verify``."""
    own = {"verify_prompt": verify, "correct_prompt": correct, "feedback_prompt": feedback,
           "refine_prompt": refine, "pik_prompt": pik, "confidence_prompt": confidence,
           "parse_verdict": parse_verdict, "verdict_continuations": verdict_continuations}
    think = verify_think if verify else None

    def generic(ask: str) -> Callable[[Example, str], str]:
        return lambda ex, text: follow_up(task.prompt(ex), text, ask)

    verify = verify or generic(VERIFY)
    correct_fn = correct or generic(CORRECT)
    parse = parse_verdict or _parse_yes_no
    verdict_feedback = feedback is None and bool(own["verify_prompt"] and own["correct_prompt"])
    if verdict_feedback:
        feedback, no_issues = verify, (lambda text: parse(text) is True)
        refine = refine or (lambda ex, text, fb: correct_fn(ex, text))
    else:
        feedback = feedback or generic(FEEDBACK)
        no_issues = lambda text: bool(NO_ISSUES.search(text or ""))
        refine = refine or (lambda ex, text, fb: follow_up(task.prompt(ex), text,
                                                           REFINE.format(feedback=(fb or "").strip())))
    return TaskFormats(
        verify=verify, correct=correct_fn,
        oracle_correct=correct or generic(ORACLE_CORRECT),
        feedback=feedback, refine=refine,
        pik=pik or (lambda ex: PIK.format(question=question_text(task, ex))),
        confidence=confidence or generic(CONFIDENCE),
        parse_verdict=parse, no_issues=no_issues,
        yes_no=_verdict_forms(verdict_continuations),
        feedback_tokens=(8 + THINK_TOKENS * bool(think)) if verdict_feedback else 256,
        feedback_stop=("\n",) if verdict_feedback else ("\n\n",),
        own=tuple(k for k, v in own.items() if v is not None), verify_think=think)


THINK_TOKENS = 256
"""Token budget of a verify rationale (``TaskFormats.verify_think``)."""


def _verdict_forms(own: tuple[str, str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A task's own two trained continuations as they are; otherwise every surface form of Yes and No."""
    from .verifiers.choice import surface_forms

    if own:
        return (own[0],), (own[1],)
    return surface_forms("Yes"), surface_forms("No")


def _parse_yes_no(text: str) -> bool | None:
    word = extract_yes_no(text)
    return None if word is None else word == "yes"


def follow_up(prompt: str, candidate: str, ask: str, prefix: str | None = None) -> str:
    """A conversation: ``prompt``'s turns, ``candidate`` as the assistant's reply, ``ask`` as the next user
    turn, and ``prefix`` (if given) as the start of the assistant's next reply, which the model continues."""
    from .chat import conversation, messages

    turns = [(m["role"], m["content"]) for m in messages(prompt)]
    turns += [("assistant", candidate.strip()), ("user", ask)]
    return conversation(turns + ([("assistant", prefix)] if prefix else []))


def ask_with_prefix(user: str, prefix: str) -> str:
    """One user message and the start of the assistant's reply (a judge's question and "Score:")."""
    from .chat import conversation

    return conversation([("user", user), ("assistant", prefix)])


def question_text(task, example: Example) -> str:
    """What a judge is shown as the user's question: the last user message of the task's prompt (so a
    multiple-choice judge sees the choices), never the gold answer."""
    from .chat import messages

    users = [m["content"] for m in messages(task.prompt(example)) if m["role"] == "user"]
    return users[-1] if users else example.question


def usc_prompt(prompt: str, texts: list[str]) -> str:
    """The Universal Self-Consistency selection prompt over ``texts`` (numbered from 1): the task's prompt,
    then a user turn listing the responses, then the assistant prefix before the chosen number."""
    from .chat import conversation, messages

    body = "\n".join(f"Response {i}: {' '.join(t.split())}" for i, t in enumerate(texts, 1))
    turns = [(m["role"], m["content"]) for m in messages(prompt)]
    # the responses go in a user turn after the question, as the USC paper's prompt lists them
    if turns and turns[-1][0] == "user":
        turns[-1] = ("user", turns[-1][1] + "\n\n" + USC.format(responses=body))
    else:
        turns.append(("user", USC.format(responses=body)))
    return conversation(turns + [("assistant", USC_PREFIX)])
