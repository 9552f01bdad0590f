# Two commands on a fresh machine with Python 3.11 and make:  make demo  ·  make test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch is installed first and pinned, so pip never pulls a multi-GB CUDA build.
# Elsewhere: make TORCH_SPEC='torch' (or any pip requirement) to choose your own build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test install lint readme clean

$(BIN)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[hf,dev,serving]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/selfimprove demo

test: install
	$(BIN)/python -m pytest -q -m "not gpu"

lint: install
	$(BIN)/ruff check src tests bench

# Regenerate the README's tables of models, tasks, strategies, verifiers and methods from the registry.
readme: install
	$(BIN)/python -c 'import pathlib; from selfimprove.cli.ls import update_readme; p = pathlib.Path("README.md"); p.write_text(update_readme(p.read_text()))'

clean:
	rm -rf $(VENV) build *.egg-info
