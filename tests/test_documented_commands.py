"""Every ``selfimprove ...`` command that the README and the pages under docs/ show is accepted by the CLI.

Commands are read from fenced code blocks (continuation lines joined, ``#`` comments dropped, shell variables
set in the same block expanded) and from inline code spans (which may wrap lines). Each is checked with
``selfimprove.cli.main.check``: argparse plus the validation every command runs before its first expensive
step (the recipe, the model spec, the task, the strategies, the training config), with no model loaded and no
run created. Usage lines are expanded: ``[--flag X]`` is taken with the flag, ``a \\| b`` as each alternative.
Placeholders become concrete values through ``PLACEHOLDERS``; a span that is only ``selfimprove COMMAND``
names the command (as in "one `selfimprove eval` on ...") and is checked to be a command. A span that starts
with a command's name and has three flags or more (`train --model M --task T --method X`) is checked too.
"""

from __future__ import annotations

import re
import shlex

import pytest
from conftest import REPO

from selfimprove.cli.main import SUBCOMMANDS, check
from selfimprove.errors import UserError

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
         *sorted((REPO / "docs" / "results").glob("*.md"))]
PLACEHOLDERS = {
    ("--model", "M"): "tiny", ("--model", "PATH"): "smollm2", ("--task", "T"): "arithmetic",
    ("--strategy", "S"): "greedy", ("--strategy", "S2"): "self-consistency:n=4",
    ("--method", "METHOD"): "star", ("--method", "NAME"): "lmsi", ("--rounds", "R"): "2",
    ("--recipe", "R"): "recipes/demo.toml", ("--recipe", "COPY.toml"): "recipes/demo.toml",
    ("--seed", "S"): "0", ("ls", "KIND"): "methods",
}
"""(the word before, the placeholder) -> the value checked in its place."""
RECIPE_PLACEHOLDER = "recipes/<method>.toml"
"""Stands for each training recipe: the command is checked once per ``recipes/*.toml`` except the demos'."""
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
"""A Markdown code span: opened and closed by the same number of backticks."""
START = re.compile(r"(?:^|\s)(?:\S*bin/)?(selfimprove [a-z].*)", re.DOTALL)
BARE = re.compile(r"\s*(?:{})\s+--".format("|".join(SUBCOMMANDS)))
"""A span written without the program's name; one with three flags or more is a command, fewer name a flag
(`eval --report`)."""
ASSIGN = re.compile(r'^\s*([A-Z_][A-Z0-9_]*)="([^"]*)"\s*$')


def _block_commands(block: str) -> list[str]:
    lines, out, env, i = block.splitlines(), [], {}, 0
    while i < len(lines):
        line = lines[i]
        while line.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        if m := ASSIGN.match(line):
            env[m.group(1)] = m.group(2)
            continue
        if m := START.search(line.split("  #")[0].split(" # ")[0]):
            out.append(re.sub(r"\$(\w+)", lambda v: env.get(v.group(1), v.group(0)), m.group(1)))
    return out


def documented() -> list[tuple[str, str]]:
    """(page, command) for every command on the pages, whitespace normalised."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        commands = [c for block in FENCE.findall(text) for c in _block_commands(block)]
        for _, span in SPAN.findall(FENCE.sub("", text)):
            if m := START.search(span):
                commands.append(m.group(1))
            elif BARE.match(span) and len(re.findall(r"\s--", span)) >= 3:  # a command: see BARE
                commands.append("selfimprove " + span.strip())
        for command in commands:
            if (page.name, " ".join(command.split())) not in found:
                found.append((page.name, " ".join(command.split())))
    return found


def expand(command: str) -> list[list[str]]:
    """The argv lists a documented command stands for (see the module docstring)."""
    command = command.replace("[", "").replace("]", "").replace(" ...", "")
    if "\\|" in command:
        words = command.split()
        head = " ".join(words[:2])
        alternatives = " ".join(words[2:]).split("\\|")
        return [a for alt in alternatives for a in expand(f"{head} {alt.strip()}")]
    if RECIPE_PLACEHOLDER in command:
        recipes = sorted(p for p in (REPO / "recipes").glob("*.toml") if not p.name.startswith("demo"))
        return [a for r in recipes for a in expand(command.replace(RECIPE_PLACEHOLDER, f"recipes/{r.name}"))]
    argv = shlex.split(command)[1:]
    for i in range(1, len(argv)):
        argv[i] = PLACEHOLDERS.get((argv[i - 1], argv[i]), argv[i])
    return [argv]


DOCUMENTED = documented()


def test_commands_are_found():
    """The extraction finds the pages' commands (a broken reader would pass every check below)."""
    commands = [c for _, c in DOCUMENTED]
    assert len(commands) >= 40, commands
    assert any(c.startswith("selfimprove train --model smollm2 --lora --task word-problems --method "
                            "no-filter") and "--reuse-start runs/star" in c
               for c in commands)  # a block's continuation lines joined
    assert any(c.startswith("selfimprove train --model smollm2 --lora --task pal-arithmetic")
               and "--method code-star" in c for c in commands)  # a block's shell variable expanded
    assert not any("$" in c or "\\" in c.replace("\\|", "") for c in commands), commands
    assert any(c.startswith("selfimprove train --model smollm2 --lora --task pal-arithmetic --method "
                            "code-star") for c in commands)  # a span without the program's name


def test_expand_usage_lines():
    assert expand("selfimprove runs list \\| show ID \\| export ID") == [
        ["runs", "list"], ["runs", "show", "ID"], ["runs", "export", "ID"]]
    assert expand("selfimprove eval --model M --task T --strategy S [--strategy S2 ...]") == [
        ["eval", "--model", "tiny", "--task", "arithmetic", "--strategy", "greedy", "--strategy",
         "self-consistency:n=4"]]


def test_check_refuses_what_run_refuses():
    """The check is not a parse alone: it refuses a train without --task and a bad setting value."""
    with pytest.raises(UserError, match="--task"):
        check(["train", "--model", "tiny", "--method", "star"])
    with pytest.raises(UserError):
        check(["train", "--model", "tiny", "--task", "arithmetic", "--n", "0"])
    with pytest.raises(UserError):
        check(["eval", "--model", "tiny", "--task", "arithmetic", "--strategy", "self-consistency:n=-1"])
    with pytest.raises(SystemExit):
        check(["train", "--model", "tiny", "--task", "arithmetic", "--method", "no-such-method"])


@pytest.mark.parametrize(("page", "command"), DOCUMENTED, ids=[f"{p}: {c[:90]}" for p, c in DOCUMENTED])
def test_documented_command_is_accepted(page, command, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SELFIMPROVE_HOME", str(tmp_path / "home"))  # nothing may land in a real home
    monkeypatch.chdir(REPO)  # recipes/ and ../shared/data as the pages name them
    for argv in expand(command):
        if len(argv) == 1:  # "one `selfimprove eval` on ...": names the command
            assert argv[0] in SUBCOMMANDS, f"{page}: {command}"
            continue
        try:
            check(argv)
        except SystemExit as e:
            pytest.fail(f"{page}: `{command}` is refused by the parser: {capsys.readouterr().err.strip()} "
                        f"(exit {e.code})")
        except UserError as e:
            pytest.fail(f"{page}: `{command}` is refused: {e}")
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").rglob("*.db")), "a run was created"
