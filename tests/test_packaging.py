"""The dependency ranges in pyproject.toml are the versions the suite runs on, and nothing declared is
unused."""

from __future__ import annotations

import importlib.metadata as md
import tomllib

import pytest
from conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize("requirement", PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["hf"])
def test_installed_versions_are_inside_the_declared_ranges(requirement):
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    try:
        installed = md.version(req.name)
    except md.PackageNotFoundError:
        pytest.skip(f"{req.name} is not installed here")
    assert req.specifier.contains(installed, prereleases=True), (
        f"{req.name} {installed} outside {req.specifier}")


def test_every_core_dependency_is_imported_somewhere():
    src = "\n".join(p.read_text() for p in (REPO / "src").rglob("*.py"))
    modules = {"math-verify": "math_verify"}
    for requirement in PYPROJECT["dependencies"]:
        from packaging.requirements import Requirement

        name = Requirement(requirement).name
        module = modules.get(name, name.replace("-", "_"))
        used = f"import {module}" in src or f"from {module}" in src or f'"{module}"' in src  # or its files
        assert used, f"{name} is declared but never used"


def test_the_license_is_an_spdx_string_with_a_setuptools_that_reads_it():
    """A ``license = { text = ... }`` table is deprecated (setuptools warns at each install and will refuse it
    from 2027-02-18); the SPDX string form needs setuptools >= 77 to build (PEP 639)."""
    from packaging.requirements import Requirement

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "MIT"
    assert all((REPO / f).is_file() for f in pyproject["project"]["license-files"])  # shipped in the wheel
    (setuptools,) = [Requirement(r) for r in pyproject["build-system"]["requires"]
                     if Requirement(r).name == "setuptools"]
    assert not setuptools.specifier.contains("76.9") and setuptools.specifier.contains("77.0")
