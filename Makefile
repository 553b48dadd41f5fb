# Two commands: `make train` and `make test`. Both create .venv on first use and reuse it; the
# install reruns only when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
# the experiment `make train` runs (conf/experiment/); EXPERIMENT= runs the bare defaults
EXPERIMENT ?= synthetic_mean_teacher

.PHONY: setup train test test-slow test-all clean-outputs help

help:
	@echo "make train [ARGS='key=value ...']  train the default experiment (EXPERIMENT=$(EXPERIMENT)) on synthetic video"
	@echo "make test                          fast test suite (slow tests excluded)"
	@echo "make test-slow                     only the slow tests"
	@echo "make setup                         create or update .venv"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)
	@echo ".venv ready ($(PY))"

train: setup
	$(PY) src/train.py $(if $(EXPERIMENT),experiment=$(EXPERIMENT)) $(ARGS)

test: setup
	$(PY) -m pytest -m "not slow" $(ARGS)

test-slow: setup
	$(PY) -m pytest -m slow $(ARGS)

test-all: setup
	$(PY) -m pytest $(ARGS)

clean-outputs:
	rm -rf outputs
