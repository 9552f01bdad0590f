"""Every example printed by any ``--help`` runs and gives a meaningful result.

The examples are read from the parsers themselves, so a new example is tested the day it is written. Each runs
in-process in a scratch directory holding the files the examples name, with a selfimprove home where the
``micro`` model is already pretrained. To keep the suite fast, three substitutions are made and written in
each test's id: the built-in ``tiny`` model becomes ``micro`` (the same code path, pretrained in seconds),
placeholder run ids become a real run's id, and a ``train`` or model ``eval`` example gets a small budget
(``TRAIN_BUDGET``, ``EVAL_BUDGET``; a recipe's model becomes micro too). Examples that
need a network download or minutes of work are listed in ``EXEMPT`` with the reason and where they are
covered.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path

import pytest
from conftest import REPO, SHARED_DATA

from selfimprove.cli.main import build_parser, main

TRAIN_BUDGET = ["--rounds", "1", "--train-limit", "6", "--eval-limit", "6", "--max-steps", "1",
                "--guards-limit", "4", "--guards-n", "2"]
"""Appended to every ``train`` example (later flags win in argparse)."""
EVAL_BUDGET = ["--limit", "12"]
"""Appended to an ``eval`` example on a real model (the scripted model's examples run as printed)."""
EXEMPT = {
    "selfimprove demo": "the full demo takes minutes; `make demo` runs it, and the --recipe example "
                        "below runs the same code on the micro model",
    "selfimprove demo --recipe recipes/demo-smollm2.toml": "the real model for about 10 minutes; "
                                                           "tests/test_demo_recipes.py runs this recipe on a "
                                                           "few examples",
    "selfimprove train --resume RUN_DIR_OR_ID": "needs an interrupted run; tests/test_training_resume.py",
    "selfimprove train --resume RUN_DIR_OR_ID --rounds 3": "needs a finished run; "
                                                           "tests/test_training_resume.py",
    "selfimprove score --task humaneval --completions samples.jsonl --out results.jsonl":
        "runs 164 programs in the sandbox; tests/test_code_tasks.py",
}
"""Examples not run here, with the reason."""
HUB_ID = re.compile(r"--model [\w.-]+/[\w.-]+")
PLACEHOLDER_RUN = re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b|\bRUN_ID\b")


def _examples() -> list[str]:
    def walk(parser):
        yield parser.epilog or ""
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from walk(sub)

    found: list[str] = []
    for epilog in walk(build_parser()):
        lines = epilog.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i].strip()
            if line.startswith("selfimprove "):
                while line.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    line = line[:-1].rstrip() + " " + lines[i].strip()
                command = line.split("  #", 1)[0].split(" # ", 1)[0].strip()
                if command not in found:
                    found.append(command)
            i += 1
    return found


EXAMPLES = _examples()


def _adapted(command: str, run_id: str) -> str:
    """The command as the test runs it (see the module docstring)."""
    command = re.sub(r"--(model|name) tiny\b(?!-)", r"--\1 micro", command)
    if command == "selfimprove pretrain":
        command += " --name micro"
    command = PLACEHOLDER_RUN.sub(run_id, command)
    command = command.replace("--home /tmp/si", "--home si-home")
    if command.startswith("selfimprove pretrain") and "--steps" in command:
        command = command.replace("--steps 2000", "--steps 20")
    return command


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, micro_model_dir):
    """A scratch directory with the files the examples name, and a home with micro pretrained."""
    work = tmp_path_factory.mktemp("help-examples")
    home = Path(micro_model_dir).parent.parent
    (work / "corrections.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"id": "q1", "initial_correct": True, "final_correct": True},
        {"id": "q2", "initial_correct": False, "final_correct": True},
        {"id": "q3", "initial_correct": True, "final_correct": False},
        {"id": "q4", "initial_correct": False, "final_correct": False}]) + "\n")
    confidences = [(0.9, True), (0.8, True), (0.3, False), (0.6, False), (0.7, True)]
    (work / "confidences.jsonl").write_text(
        "\n".join(json.dumps({"confidence": c, "correct": y}) for c, y in confidences) + "\n")
    rows = [{"id": f"g{i}", "question": f"What is {i} + {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}",
             "completion": f"{i} plus {i} is {2 * i}.\n#### {2 * i if i % 3 else 2 * i + 1}"}
            for i in range(1, 7)]
    (work / "outputs.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (work / "recipes").symlink_to(REPO / "recipes")
    (work / "my-demo.toml").write_text(
        'model = "micro"\nseed = 0\neval_limit = 12\nsc_n = 4\narms = ["lmsi", "no-filter"]\n'
        "[loop]\nrounds = 1\nn = 2\ntrain_limit = 8\n[loop.sft]\nmax_steps = 1\n")
    return work, home


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _check(command: str, out: str) -> None:
    """A meaningful result for the kind of command."""
    words = command.split()
    if words[1] == "eval":
        rows = re.findall(r"│\s*(\S+)\s*│\s*([\d.]+)\s*│.*?│\s*(\d+)/(\d+)\s*│", out)
        assert rows, out
        for name, acc, unparsed, n in rows:
            assert int(unparsed) < int(n), f"{name}: every answer unparsed\n{out}"
    elif words[1] == "score":
        m = re.search(r"accuracy=([\d.]+) n=(\d+) unparsed=(\d+)", out)
        assert m and float(m.group(1)) > 0 and int(m.group(3)) < int(m.group(2)), out
    elif words[1] == "analyze":
        result = json.loads(out.strip().splitlines()[-1])
        assert result.get("n", 0) > 0 or result.get("n_questions", 0) > 0, result
    elif words[1] == "pretrain":
        assert '"model"' in out, out
    elif words[1] == "ls":
        assert len(out.strip().splitlines()) >= 3, out
    elif words[1] == "runs":
        written = command.split("--out ", 1)[1].split()[0] if "--out " in command else None
        assert (Path(written).stat().st_size > 0) if written else out.strip(), out
    elif words[1] in ("train", "demo"):
        assert re.search(r"\d+\.\d", out), out  # accuracies were printed
    if words[1] == "demo":  # it ends with the path of its HTML page: the plot and the paired tests
        page = Path(re.findall(r"report: (\S+\.html)", out)[-1]).read_text(encoding="utf-8")
        assert "data:image/png;base64," in page and "Paired tests" in page and "exact McNemar" in page


def test_every_help_lists_examples():
    assert len(EXAMPLES) >= 15
    from selfimprove.cli.main import SUBCOMMANDS

    assert all(e.split()[1] in SUBCOMMANDS for e in EXAMPLES), EXAMPLES


@pytest.mark.parametrize("command", [
    pytest.param(e, marks=pytest.mark.slow) if e.split()[1] in ("train", "demo") else e for e in EXAMPLES])
def test_help_example_runs(command, workdir, monkeypatch, capsys):
    if command in EXEMPT:
        pytest.skip(EXEMPT[command])
    if command.split()[1] == "view":
        pytest.skip("starts a web server that runs until stopped; tests/test_view.py serves the same app")
    if HUB_ID.search(command):
        pytest.skip("downloads a model from the hub; the same commands run the micro model here")
    if " gsm8k" in command and "--data" in command and not SHARED_DATA.exists():
        pytest.skip("needs GSM8K beside the project")
    work, home = workdir
    monkeypatch.chdir(work)
    monkeypatch.setenv("SELFIMPROVE_HOME", str(home))
    code, out = _run(["eval", "--model", "scripted", "--task", "arithmetic", "--limit", "4", "--strategy",
                      # a run the runs/analyze examples can read
                      "greedy", "--strategy", "self-correct"], capsys)
    run_id = re.search(r"stored as run (\S+)", out).group(1)
    adapted = _adapted(command, run_id)
    argv = shlex.split(adapted)[1:]
    if argv[0] == "train":
        argv += TRAIN_BUDGET + ([] if "--model" in argv else ["--model", "micro"])  # a recipe's tiny, too
    if argv[0] == "eval" and "--model" in argv and argv[argv.index("--model") + 1] != "scripted":
        argv += EVAL_BUDGET
    code, out = _run(argv, capsys)
    assert code == 0, f"{adapted} exited {code}:\n{out}"
    _check(adapted, out)
