"""Scripts and benchmarks that load a model print their own output only, as the command line does: they call
the one quiet setup (``selfimprove.cli.main.quiet_third_party``), never copies of its switches."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO

LOADS_A_MODEL = re.compile(r"from_pretrained|HFBackend|get_backend\(|run_loop|resolve_model|load_policy|"
                           r"ensure_model|ensure_smollm2")
"""What a file calls when it loads, pretrains or converts a model (whose libraries draw progress bars)."""


def _files() -> list:
    return sorted(p for d in ("scripts", "bench") for p in (REPO / d).glob("*.py")
                  if LOADS_A_MODEL.search(p.read_text(encoding="utf-8")))


def test_every_script_that_loads_a_model_calls_the_quiet_setup():
    files = _files()
    assert len(files) >= 10, files  # the pattern still finds them
    missing = [p.name for p in files if "quiet_third_party()" not in p.read_text(encoding="utf-8")]
    assert not missing, f"call selfimprove.cli.main.quiet_third_party() after parsing arguments: {missing}"
    copies = [p.name for p in files if "HF_HUB_DISABLE_PROGRESS_BARS" in p.read_text(encoding="utf-8")]
    assert not copies, f"use quiet_third_party(), not a copy of its settings: {copies}"


@pytest.mark.slow
def test_a_benchmark_that_loads_a_model_prints_no_progress_bar():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(REPO / "bench" / "bench_hf_generate.py"), "--prompts", "2",
                           "--n", "2", "--max-tokens", "2", "--repeats", "1"],
                          check=False, capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "median tokens/s" in done.stdout  # it ran
    assert "Loading weights" not in done.stderr and "it/s]" not in done.stderr, done.stderr[-2000:]
