# ImageLabeller: `make run` serves the API locally, `make test` runs every test.
# Both set up what they need first (idempotent; nothing is rebuilt that is up to date).

SHELL := /bin/bash
PORT ?= 8000
VENV := .venv
BUILD_VENV := .build-venv
# Every model IMAGELABELLER_MODEL can choose (chalicelib/adapters/onnx.py, MODELS).
MODELS := chalicelib/models/efficientnet-lite0.onnx chalicelib/models/efficientnet-lite2.onnx
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: setup venv model run test lint bench clean

setup: $(VENV)/.installed $(MODELS)
	scripts/install-chromium

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(VENV)/bin/python || "$$(scripts/find-python 3.12)" -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -r requirements-dev.txt
	$(VENV)/bin/pip install $(PIP_FLAGS) -e . --no-deps
	touch $@

# PyTorch lives only here, in its own Python 3.11 environment, for the ONNX export.
$(BUILD_VENV)/.installed: requirements-build.txt
	test -x $(BUILD_VENV)/bin/python || "$$(scripts/find-python 3.11)" -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/pip install $(PIP_FLAGS) -r requirements-build.txt
	touch $@

model: $(MODELS)

# Each model is built once, when its file is missing. The build environment is made only
# when a model must be built (or for `make test`).
$(MODELS): chalicelib/models/efficientnet-%.onnx:
	$(MAKE) $(BUILD_VENV)/.installed
	$(BUILD_VENV)/bin/python tools/model/build_model.py --variant $* --out $@

run: setup
	$(VENV)/bin/chalice local --stage local --port $(PORT) --no-autoreload

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: setup $(BUILD_VENV)/.installed lint
	$(VENV)/bin/python -m pytest

bench: setup
	$(VENV)/bin/python scripts/bench.py

clean:
	rm -rf $(VENV) $(BUILD_VENV) chalicelib/models .chalice/deployments imagelabeller.egg-info \
		.pytest_cache .mypy_cache .ruff_cache
