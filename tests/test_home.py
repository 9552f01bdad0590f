"""One home-directory lookup for models, the run store and run directories."""

from __future__ import annotations

from pathlib import Path

from selfimprove.files import home
from selfimprove.store.runs import default_store_path
from selfimprove.tiny.models import model_dir


def test_home_from_the_environment_everywhere(monkeypatch, tmp_path):
    monkeypatch.setenv("SELFIMPROVE_HOME", str(tmp_path))
    assert home() == tmp_path
    assert default_store_path() == tmp_path / "runs.db"
    assert model_dir("tiny") == tmp_path / "models" / "tiny"
    assert home(tmp_path / "other") == tmp_path / "other"


def test_an_empty_home_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("SELFIMPROVE_HOME", "")
    default = Path("~/.cache/selfimprove").expanduser()
    assert home() == default and default_store_path() == default / "runs.db"
    monkeypatch.delenv("SELFIMPROVE_HOME")
    assert home() == default and model_dir("tiny") == default / "models" / "tiny"
