"""The registry: names resolve to objects, a strategy registered from outside runs by name from the CLI (by a
``register_*`` call and by a Python entry point), ``selfimprove ls`` lists every kind, and the task contract
declares every hook with a default."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest

from selfimprove import registry
from selfimprove.cli.main import main
from selfimprove.errors import UserError
from selfimprove.strategies.base import generate_step, make_trace
from selfimprove.tasks.base import Task


@dataclass(frozen=True)
class LastSample:
    """Test strategy: the last of n samples wins."""

    n: int = 3
    """Samples per example."""
    name = "test-last-sample"

    def run(self, backend, task, examples):
        from selfimprove.records import SamplingParams

        params = SamplingParams(n=self.n, temperature=1.0, max_tokens=200, seed=0)
        steps = generate_step(backend, task, [task.prompt(e) for e in examples], params)
        return [make_trace(e, self.name, [s], initial_answer=s.answers[0], final_answer=s.answers[-1])
                for e, s in zip(examples, steps)]


def test_a_strategy_registered_here_runs_by_name_from_the_cli(tmp_path, capsys):
    registry.register_strategy("test-last-sample", LastSample)
    assert "test-last-sample" in registry.names("strategies")
    assert registry.build_strategy("test-last-sample:n=5") == LastSample(n=5)
    code = main(["eval", "--model", "scripted:error_rate=0.5", "--task", "arithmetic", "--limit", "12",
                 "--strategy", "test-last-sample:n=4", "--store", str(tmp_path / "runs.db")])
    out = capsys.readouterr().out
    assert code == 0
    row = next(line for line in out.splitlines() if "test-last-sample" in line)
    assert "0/12" in row  # every answer parsed: the scripted model speaks the arithmetic task's format


PLUGIN = '''
from dataclasses import dataclass
from selfimprove.strategies.sample import Greedy


@dataclass(frozen=True)
class PluginGreedy(Greedy):
    """Greedy, from an installed plugin."""

    name = "plugin-greedy"
'''


def test_an_entry_point_plugin_registers_a_strategy(tmp_path):
    (tmp_path / "si_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "si_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: si-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[selfimprove.strategies]\nplugin-greedy = si_plugin:PluginGreedy\n")
    env_path = f"{tmp_path}:{':'.join(p for p in sys.path if p)}"
    listed = subprocess.run([sys.executable, "-m", "selfimprove.cli.main", "ls", "strategies"],
                            capture_output=True, text=True, env={"PYTHONPATH": env_path}, check=True).stdout
    assert "plugin-greedy" in listed and "Greedy, from an installed plugin." in listed
    run = subprocess.run([sys.executable, "-m", "selfimprove.cli.main", "eval", "--model", "scripted",
                          "--task", "arithmetic", "--limit", "5", "--strategy", "plugin-greedy",
                          "--store", str(tmp_path / "runs.db")],
                         capture_output=True, text=True, env={"PYTHONPATH": env_path}, check=False)
    assert run.returncode == 0, run.stderr
    assert "plugin-greedy" in run.stdout and "0/5" in run.stdout


@pytest.mark.parametrize("kind", list(registry.KINDS))
def test_ls_lists_every_name_with_a_description(kind, capsys):
    assert main(["ls", kind]) == 0
    out = capsys.readouterr().out
    for entry in registry.entries(kind):
        line = next(x for x in out.splitlines() if x.startswith(entry.name + " "))
        assert len(line.split(None, 1)) == 2 and len(line.split(None, 1)[1]) > 10, line


def test_ls_shows_options_with_defaults_and_docs(capsys):
    main(["ls", "strategies"])
    out = capsys.readouterr().out
    assert "n=16 (int)  Samples per example." in out  # self-consistency's field and its docstring


def test_unknown_names_list_the_known_ones():
    with pytest.raises(UserError, match=r"unknown strategy 'nope'; known: .*self-consistency"):
        registry.build_strategy("nope")
    with pytest.raises(UserError, match=r"unknown task 'nope'.*arithmetic"):
        registry.build_task("nope")
    with pytest.raises(UserError, match="unknown strategy 'greedy' option 'n'"):
        registry.build_strategy("greedy:n=3")


def test_model_specs_resolve_through_the_registry():
    b = registry.build_backend("scripted:error_rate=0.1,seed=3")
    assert (b.error_rate, b.seed) == (0.1, 3)
    assert b.fingerprint() != registry.build_backend("scripted:error_rate=0.2,seed=3").fingerprint()
    with pytest.raises(UserError, match="unknown scripted model option 'bad'"):
        registry.build_backend("scripted:bad=1")


def test_verifiers_build_by_name_and_gold_is_refused_for_selection():
    from selfimprove.strategies.best_of_n import self_verifier

    task, backend = registry.build_task("arithmetic"), registry.build_backend("scripted")
    assert registry.build_verifier("ptrue:threshold=0.7", backend, task).threshold == 0.7
    assert registry.build_verifier("gold", backend, task).uses_gold
    with pytest.raises(ValueError, match="reads gold answers"):
        self_verifier("gold", backend, task)


class Minimal(Task):
    """Only the required hooks."""

    name = "minimal"

    def examples(self, split):
        from selfimprove.records import Example

        return [Example("q1", "1+1", "2", meta={"solution": "2"})]

    def prompt(self, example):
        return f"{example.question} ="

    def extract(self, text):
        return text.strip() or None


def test_every_task_hook_has_a_default():
    t = Minimal()
    e = t.examples("test")[0]
    assert t.describe() == "minimal" and t.check(e, "2") is True and t.check(e, None) is None
    assert t.solution(e) == "2" and t.plausible(e, "3") is True
    assert t.pool_split("test") is None and t.harder_splits(3) == () and t.extra_eval_splits() == ()
    assert t.correct_target(e) is None and t.verify_format is None
    assert t.hint_prompt(e) == "hint: the answer is 2\n1+1 ="
    fmt = t.formats()
    assert fmt.own == () and "correct?" in fmt.verify(e, "2")  # the generic template
    with pytest.raises(UserError, match="cannot read gold answers from completion rows"):
        t.example_from_row({}, "f.jsonl", 1, "x")
    registry.register_task("minimal", Minimal)
    assert isinstance(registry.build_task("minimal"), Minimal)
    with pytest.raises(UserError, match="takes no --data"):
        registry.build_task("minimal", data="x.jsonl")


def test_the_arithmetic_task_declares_its_own_formats():
    t = registry.build_task("arithmetic:verify=2")
    assert set(t.formats().own) == {"verify_prompt", "correct_prompt", "parse_verdict",
                                    "verdict_continuations"}
    assert t.formats().verify_think == "|" and t.verify_format == 2
    assert t.harder_splits(2) == ("terms=5", "terms=6") and t.extra_eval_splits() == ("test-hard",)


def test_no_probing_of_tasks():
    import pathlib
    import re

    src = pathlib.Path(registry.__file__).parent
    probes = [f"{p.relative_to(src)}: {line.strip()}" for p in src.rglob("*.py")
              for line in p.read_text().splitlines()
              if re.search(r"(hasattr|getattr)\((self\.)?task\b", line)]
    assert probes == []


def test_plugin_module_docs_show_the_entry_point_group():
    doc = textwrap.dedent(registry.__doc__)
    assert '[project.entry-points."selfimprove.strategies"]' in doc
