"""``eval --resume RUN --limit N`` with a larger N adds examples to a run: only the new ones run, the stored
traces stay, and the table covers all N. A smaller N is refused, naming the flag and why."""

from __future__ import annotations

import re

import pytest

from selfimprove.cli.main import main
from selfimprove.store.runs import RunStore
from selfimprove.strategies.sample import Greedy


def test_a_larger_limit_runs_only_the_new_examples(tmp_path, monkeypatch, capsys):
    db = str(tmp_path / "runs.db")
    assert main(["eval", "--model", "scripted", "--task", "arithmetic", "--limit", "3", "--store", db]) == 0
    run_id = re.search(r"stored as run (\S+)", capsys.readouterr().err).group(1)
    before = RunStore(db, readonly=True).traces(run_id, "greedy")

    seen: list[str] = []
    real = Greedy.run

    def spy(self, backend, task, examples):
        seen.extend(e.id for e in examples)
        return real(self, backend, task, examples)

    monkeypatch.setattr(Greedy, "run", spy)
    assert main(["eval", "--resume", run_id, "--limit", "7", "--store", db]) == 0
    out = capsys.readouterr()
    store = RunStore(db, readonly=True)
    after = store.traces(run_id, "greedy")
    assert [t.example_id for t in after[:3]] == [t.example_id for t in before]
    assert [t.to_dict() for t in after[:3]] == [t.to_dict() for t in before]  # the stored ones kept
    assert seen == [t.example_id for t in after[3:]] and len(after) == 7  # only the 4 new ones ran
    run = store.get_run(run_id)
    assert run["config"]["limit"] == 7 and run["status"] == "done"
    assert store.metrics(run_id)["greedy"]["n"] == 7 and "n=7" in out.out
    assert main(["eval", "--resume", run_id, "--store", db]) == 0  # later resumes keep the new limit
    assert len(RunStore(db, readonly=True).traces(run_id, "greedy")) == 7


@pytest.mark.parametrize("limit", ["2", "3"])
def test_a_smaller_limit_is_refused_naming_the_flag(limit, tmp_path, capsys):
    db = str(tmp_path / "runs.db")
    assert main(["eval", "--model", "scripted", "--task", "arithmetic", "--limit", "4", "--store", db]) == 0
    run_id = re.search(r"stored as run (\S+)", capsys.readouterr().err).group(1)
    assert main(["eval", "--resume", run_id, "--limit", limit, "--store", db]) == 2
    err = capsys.readouterr().err
    assert "--limit" in err and "never lower it" in err
    assert RunStore(db, readonly=True).get_run(run_id)["config"]["limit"] == 4


def test_a_resume_with_other_weights_is_refused(tmp_path, capsys):
    """The run's stored answers came from one checkpoint: new ones from another would share its table."""
    from conftest import make_random_llama

    model, db = make_random_llama(tmp_path / "model"), str(tmp_path / "runs.db")
    base = ["--store", db]
    assert main(["eval", "--model", str(model), "--task", "arithmetic", "--limit", "2",
                 "--strategy", "greedy:max_tokens=4", *base]) == 0
    run_id = re.search(r"stored as run (\S+)", capsys.readouterr().err).group(1)
    assert main(["eval", "--resume", run_id, "--limit", "3", *base]) == 0  # same weights: resumes
    capsys.readouterr()
    make_random_llama(model, seed=1)  # the same folder, retrained (other weights)
    assert main(["eval", "--resume", run_id, "--limit", "5", *base]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "have changed since run" in err and "sha256" in err
    store = RunStore(db, readonly=True)
    assert store.get_run(run_id)["config"]["limit"] == 3
    assert len(store.traces(run_id, "greedy:max_tokens=4")) == 3
