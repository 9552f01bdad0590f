"""Steps of a completion: how a task's solution splits into reasoning steps, for search over partial
solutions.

A task declares its ``StepFormat`` through its ``step_format()`` hook (the built-in arithmetic task: one
scratchpad entry `` a2100=2100`` per step, each opened by a space; GSM8K: one line per step); the default is
``LINES`` (one line per step). A user can override the delimiter (``beam:delimiter=...``). A partial solution
is a prefix of steps, and ``"".join(split(text)) == text`` always holds, so nothing is lost by splitting.

Next-step generation stops at the delimiter (a stop string): for a *closing* delimiter (lines) the prompt is
``prompt + prefix`` and the delimiter is appended to the generated text; for an *opening* delimiter (the
arithmetic scratchpad, whose every entry starts with a space) the delimiter is appended to the prompt and
prepended to the generated text. A stop string ends the text wherever the model writes it, so a step can never
contain the delimiter.

What a backend does not say is whether a generation ended at the delimiter or at end-of-sequence: both are
finish reason 'stop'. A path therefore ends when its partial solution matches the task's ``final`` pattern
(the answer is written), when a step comes back empty (the model stopped, or wrote the delimiter at once),
when a step hits its token budget, or when the search's depth limit is reached. A path that ended without an
answer is still a leaf; its answer is ``task.extract`` of its text, None when unparseable (counted, never
dropped).

On a chat-template backend the partial solution is sent as the start of the assistant's reply
(``chat.continue_reply``: a final assistant message the template continues), never appended to the user's
turn.

Not covered: steps of structured output (code blocks, JSON), steps split by a model rather than a delimiter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class StepFormat:
    """How a completion splits into steps and where a step ends."""

    delimiter: str = "\n"
    """The text between two steps; next-step generation stops at it."""
    opening: bool = False
    """True when the delimiter opens each step (`` a2100=2100``), False when it closes each step (lines)."""
    final: str | None = None
    """Regular expression: a partial solution matching it has written its final answer. None: the path ends
    only by stopping or by a limit."""
    judges_partial: bool = True
    """False when the task's verify prompt shows only a candidate's final answer, so P(True) cannot judge a
    partial solution (the built-in task's verify format 2); self-evaluation then scores finished paths
    only."""

    def __post_init__(self) -> None:
        if not self.delimiter:
            raise ValueError("StepFormat.delimiter must be a non-empty string, e.g. '\\n' or '\\n\\n'")
        if self.final is not None:
            try:
                re.compile(self.final)
            except re.error as e:
                raise ValueError(f"StepFormat.final is not a regular expression ({e}); e.g. '####'") from None

    def split(self, text: str) -> list[str]:
        """The steps of ``text``, each with its delimiter, so that ``"".join(steps) == text``."""
        d, out = self.delimiter, []
        if self.opening:
            starts = [0] + [i for i in _find_all(text, d) if i > 0]
            return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)]) if text[a:b]]
        start = 0
        for i in _find_all(text, d):
            out.append(text[start:i + len(d)])
            start = i + len(d)
        if start < len(text):
            out.append(text[start:])
        return out

    def next_prompt(self, prompt: str, prefix: str) -> str:
        """The prompt that generates the step after the partial solution ``prefix``."""
        return prompt + prefix + (self.delimiter if self.opening else "")

    def make_step(self, generated: str, ended: bool) -> str:
        """A step's text from what the model generated before the stop string; ``ended`` paths get no closing
        delimiter (nothing follows them)."""
        if self.opening:
            return self.delimiter + generated
        return generated if ended else generated + self.delimiter

    def answered(self, prefix: str) -> bool:
        """Whether the partial solution has written its final answer."""
        return self.final is not None and re.search(self.final, prefix) is not None


LINES = StepFormat()
"""The generic format: one line per step, a path ends when the model stops."""


def step_format(task, delimiter: str | None = None) -> StepFormat:
    """The task's step format (``task.step_format()``; ``LINES`` by default), with ``delimiter`` replacing the
    task's own when given (a user-set delimiter for free text)."""
    fmt = task.step_format()
    if delimiter:
        from dataclasses import replace

        fmt = replace(fmt, delimiter=delimiter)
    return fmt


def decode_delimiter(text: str) -> str:
    """A delimiter as typed on a command line: ``\\n`` and ``\\t`` escapes become the characters."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _find_all(text: str, sub: str) -> list[int]:
    out, i = [], text.find(sub)
    while i >= 0:
        out.append(i)
        i = text.find(sub, i + len(sub))
    return out
