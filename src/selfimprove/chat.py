"""Conversations carried in prompt strings, so every backend keeps the batch-of-strings contract.

A task or strategy that wants a system message or few-shot turns writes the conversation with
``conversation(...)``: each message opens with a marker line (``<<system>>``, ``<<user>>``,
``<<assistant>>``). A backend then reads it back with ``messages(prompt)``:

- a chat backend (the ``hf`` backend on a tokenizer with a chat template, the ``openai`` backend with
  ``chat=true``) sends the messages through the chat template; a final assistant message is continued
  (a prefix the model completes), otherwise the template's generation prompt is added;
- any other backend sends ``plain(prompt)``: the contents joined as plain text (system, then each turn).

A prompt that does not open with a marker is one user message (and its own plain text), so prompts written
before conversations existed mean what they meant. Text appended to a conversation (``prompt + "..."``, as
strategies that revise or judge do) extends its last message. The markers sit at line starts in a form that
task data does not contain; ``conversation`` refuses content that would forge one.

Not covered: tool calls, images, multiple assistant candidates per turn.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

ROLES = ("system", "user", "assistant")
_MARK = re.compile(r"^<<(system|user|assistant)>>\n", re.MULTILINE)


def conversation(turns: Iterable[tuple[str, str]]) -> str:
    """A prompt string holding ``(role, content)`` turns in order; roles are system, user, assistant."""
    parts = []
    for role, content in turns:
        if role not in ROLES:
            raise ValueError(f"chat role must be one of {', '.join(ROLES)}, got {role!r}")
        if _MARK.search(content):
            raise ValueError(f"a {role} message contains a line like '<<{role}>>', which marks a new message")
        parts.append(f"<<{role}>>\n{content}")
    if not parts:
        raise ValueError("a conversation needs at least one message")
    return "\n".join(parts)


def is_conversation(prompt: str) -> bool:
    return _MARK.match(prompt) is not None


def messages(prompt: str) -> list[dict[str, str]]:
    """``[{"role": ..., "content": ...}, ...]`` of a prompt; a plain prompt is one user message."""
    if not is_conversation(prompt):
        return [{"role": "user", "content": prompt}]
    pieces = _MARK.split(prompt)[1:]  # role, content, role, content, ...
    out = []
    for k in range(0, len(pieces), 2):
        content = pieces[k + 1]
        if k + 2 < len(pieces):
            content = content.removesuffix("\n")  # the separator before the next marker
        out.append({"role": pieces[k], "content": content})
    return out


def plain(prompt: str) -> str:
    """The text a model without a chat template receives: the system message, then each turn; a user turn and
    the assistant turn that answers it are joined by one newline, turns by a blank line."""
    if not is_conversation(prompt):
        return prompt
    text = ""
    for m in messages(prompt):
        sep = "" if not text else "\n" if m["role"] == "assistant" else "\n\n"
        text += sep + m["content"]
    return text


def before_last_user(prompt: str, text: str) -> str:
    """``prompt`` with ``text`` put at the start of its last user message (a hint that must stay inside the
    conversation); for a plain prompt, ``text + prompt``."""
    if not is_conversation(prompt):
        return text + prompt
    msgs = messages(prompt)
    last = max(i for i, m in enumerate(msgs) if m["role"] == "user")
    msgs[last] = {"role": "user", "content": text + msgs[last]["content"]}
    return conversation([(m["role"], m["content"]) for m in msgs])


def continue_reply(prompt: str, text: str, chat: bool) -> str:
    """``prompt`` followed by ``text`` as the start of the model's reply (a partial solution that search
    continues). For a chat backend (``chat``) ``text`` becomes a final assistant message, which the template
    continues, unless the prompt already ends in one (then ``text`` extends it); without a chat template, and
    for an empty ``text``, the plain concatenation ``prompt + text`` (unchanged behaviour)."""
    if not chat or not text:
        return prompt + text
    msgs = messages(prompt)
    if msgs[-1]["role"] == "assistant":
        return prompt + text
    return conversation([(m["role"], m["content"]) for m in msgs] + [("assistant", text)])


def render_with_template(tokenizer, prompt: str) -> str:
    """The exact text a chat model receives for ``prompt``: its messages through the tokenizer's template,
    continuing a final assistant message or else adding the generation prompt."""
    msgs = messages(prompt)
    prefill = msgs[-1]["role"] == "assistant"
    return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=not prefill,
                                         continue_final_message=prefill)


def model_text(tokenizer, prompt: str, use_template: bool = True) -> str:
    """The text an ``hf`` model receives for ``prompt`` (before its tokenizer's default special tokens): the
    chat template's text when the tokenizer has one and ``use_template``, else ``plain(prompt)``. Trainers
    format their rows with it, so a model is trained on exactly the text it is later prompted with."""
    if use_template and getattr(tokenizer, "chat_template", None):
        return render_with_template(tokenizer, prompt)
    return plain(prompt)


def few_shot(system: str | None, shots: Sequence[tuple[str, str]], user: str) -> str:
    """The usual task prompt: an optional system message, worked examples as user/assistant turns, then the
    question as the last user message (a lone user message is returned as the plain prompt it equals)."""
    if not system and not shots:
        return conversation([("user", user)]) if _MARK.search(user) else user
    turns = [("system", system)] if system else []
    for question, answer in shots:
        turns += [("user", question), ("assistant", answer)]
    return conversation(turns + [("user", user)])
