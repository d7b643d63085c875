# ImageLabeller (README, "Which command when"):
#   make run     serves the API locally: needs .venv and the models; installs nothing as root
#   make check   ruff, mypy and the fast tests (`pytest -m fast`), with .venv alone, < 1 min
#   make test    every test: also the PyTorch environment, the models, MiniStack and Chromium (root)
#   make bench   the speed figures of docs/PERFORMANCE.md
# Each sets up what it needs first (idempotent; nothing is rebuilt that is up to date).

SHELL := /bin/bash
PORT ?= 8000
VENV := .venv
BUILD_VENV := .build-venv
EMULATOR_VENV := .ministack-venv
# Every model IMAGELABELLER_MODEL can choose: the catalogue, chalicelib/data/models.json.
MODELS := $(shell python3 tools/model/catalogue.py --files)
# Those exported from PyTorch weights, and the int8 ones quantised from them.
EXPORTED_MODELS := $(shell python3 tools/model/catalogue.py --exported-files)
QUANTISED_MODELS := $(shell python3 tools/model/catalogue.py --quantised-files)
ifeq ($(strip $(MODELS)),)
$(error no model files: `python3 tools/model/catalogue.py --files` must list chalicelib/data/models.json)
endif
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: setup venv model browser emulator run check typecheck fast-tests test lint bench clean

setup: $(VENV)/.installed $(MODELS)

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-layer.txt requirements-dev.txt pyproject.toml
	test -x $(VENV)/bin/python || "$$(scripts/find-python 3.12)" -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -r requirements-dev.txt
	$(VENV)/bin/pip install $(PIP_FLAGS) -e . --no-deps
	touch $@

# PyTorch lives only here, in its own Python 3.11 environment, for the ONNX export. The
# SageMaker SDK's wheel is only downloaded beside it: a test reads the container images it
# bundles (tests/delivery/test_readiness.py); nothing installs or imports it.
SAGEMAKER_SDK_VERSION := 2.257.7
$(BUILD_VENV)/.installed: requirements-build.txt
	test -x $(BUILD_VENV)/bin/python || "$$(scripts/find-python 3.11)" -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/pip install $(PIP_FLAGS) -r requirements-build.txt
	touch $@

SDK_WHEEL := $(BUILD_VENV)/wheels/sagemaker-$(SAGEMAKER_SDK_VERSION)-py3-none-any.whl
$(SDK_WHEEL): $(BUILD_VENV)/.installed
	$(BUILD_VENV)/bin/pip download $(PIP_FLAGS) --no-deps --dest $(BUILD_VENV)/wheels \
		sagemaker==$(SAGEMAKER_SDK_VERSION)

model: $(MODELS)

# MiniStack, the local AWS of the deploy rehearsal (tests/rehearsal), alone in its venv:
# the Lambda code it runs must find its packages in the deployment zip, not here.
emulator: $(EMULATOR_VENV)/.installed

$(EMULATOR_VENV)/.installed: requirements-emulator.txt
	test -x $(EMULATOR_VENV)/bin/python || "$$(scripts/find-python 3.12)" -m venv $(EMULATOR_VENV)
	$(EMULATOR_VENV)/bin/pip install $(PIP_FLAGS) -r requirements-emulator.txt
	touch $@

# Each model is built once, when its file is missing. The build environment is made only
# when a model must be built (or for `make test`).
$(EXPORTED_MODELS): models/efficientnet-%.onnx:
	$(MAKE) $(BUILD_VENV)/.installed
	$(BUILD_VENV)/bin/python tools/model/build_model.py --variant $* --out $@

# An int8 model is quantised from its float model (again when that is rebuilt), in .venv:
# onnxruntime's own tools, calibrated on photos scikit-image ships (a few seconds each).
$(QUANTISED_MODELS): models/efficientnet-%-int8.onnx: models/efficientnet-%.onnx | $(VENV)/.installed
	$(VENV)/bin/python -m tools.model.quantize --model efficientnet-$*-int8 --source $< --out $@

# Debian's Chromium for the browser tests (tests/web/test_page.py) only: apt-get, as root
# or through sudo. Nothing else needs it.
browser:
	scripts/install-chromium

run: setup
	$(VENV)/bin/chalice local --stage local --port $(PORT) --no-autoreload

# The everyday loop. It builds nothing: no model, no PyTorch, no browser. mypy runs beside
# the tests, which run in two processes (many of them wait on sockets and deadlines).
# schemathesis's pytest plugin would load it and hypothesis in each; no fast test uses it.
check: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory -j2 --output-sync=target typecheck fast-tests

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

fast-tests: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -m fast -q -n 2 -p no:schemathesis

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: setup $(BUILD_VENV)/.installed $(SDK_WHEEL) $(EMULATOR_VENV)/.installed browser lint
	$(VENV)/bin/python -m pytest

bench: setup
	$(VENV)/bin/python scripts/bench.py

clean:
	rm -rf $(VENV) $(BUILD_VENV) $(EMULATOR_VENV) models .chalice/deployments imagelabeller.egg-info \
		.pytest_cache .mypy_cache .ruff_cache
