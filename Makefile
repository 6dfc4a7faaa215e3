# Edge triage appliance — the two commands: `make run` and `make test`.
# Both set up everything they need on a fresh machine (Debian/Ubuntu, Python >= 3.10).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
MODEL ?= models/triage-minilm-int8
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: setup run test test-slow clean

# The venv carries the runtime, the build-time extra (torch CPU build, transformers) and the test
# tools. torch is installed first and pinned: pip takes the CPU build from local disk, and an
# unpinned torch pulled in by another package would download a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q 'torch==2.13.0'
	$(PIP) install -q -e '.[export,test]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/edge-triage serve --model $(MODEL) --host $(HOST) --port $(PORT)

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
