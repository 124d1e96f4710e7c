# xlt: zero-shot cross-lingual transfer after intermediate-task training.
# `make` (or `make help`) lists the targets. Every target that needs the environment runs `setup` first.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BASE ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
TORCH_SPEC  ?= torch==2.13.0
PROFILE     ?= embedded
STUDY       ?= all
JOBS        ?= auto
PYTEST_ARGS ?=
SETUP_STAMP := $(VENV)/.setup-done

export PYTHONUNBUFFERED := 1
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help setup test test-fast smoke reproduce report results clean bench bench-gpu lint

help: ## List the targets
	@echo "xlt — zero-shot cross-lingual transfer study.  Usage: make <target> [PROFILE=embedded|embedded-full|xtreme-r] [STUDY=<name>|all]"
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

setup: $(SETUP_STAMP) ## Create .venv: torch ($(TORCH_SPEC)) first, then xlt_utils[dev,distributed], a Jupyter kernel, offline assets

$(SETUP_STAMP): pyproject.toml
	$(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	@# Pin whatever torch was installed so no later requirement can swap it for another build.
	$(PY) -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/constraints.txt
	@# dev: the test tools; distributed: Ray, for `--executor ray` and its tests (accelerate is a core dependency).
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e ".[dev,distributed]"
	$(PY) -m ipykernel install --user --name xlt --display-name "Python (xlt)" > /dev/null
	$(PY) -m xlt_utils setup-assets
	touch $@

test: setup ## Run the whole test suite (unit, formats, notebooks, smoke grid); offline, CPU
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: setup ## Unit tests only (skips the slow end-to-end tier)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: setup ## Training/evaluation throughput: our loop vs the Hugging Face Trainer
	$(PY) -m xlt_utils bench train

bench-gpu: setup ## The GPU checks (XLM-R large/XL, random weights; needs CUDA): JSON under outputs/bench/gpu
	PYB=$(PY) bash configs/bench-gpu.sh

reproduce: setup ## Run a study end to end, offline: grid -> results -> report (PROFILE, STUDY, JOBS)
	$(PY) -m xlt_utils reproduce --study $(STUDY) --profile $(PROFILE) --jobs $(JOBS)

smoke: setup ## Every phase notebook through papermill on the paper study's smoke grid (~2 min on CPU)
	$(PY) -m xlt_utils reproduce --study paper --profile smoke --jobs $(JOBS)

results: setup ## Collect every finished run into outputs/results/metrics.csv
	$(PY) -m xlt_utils results

report: setup ## Render the analysis notebooks of PROFILE to HTML under outputs/report/
	$(PY) -m xlt_utils results
	$(PY) -m xlt_utils report --profile $(PROFILE) --jobs $(JOBS)

lint: setup ## Ruff over the package and tests
	$(VENV)/bin/ruff check xlt_utils tests

clean: ## Remove caches (never runs or results): test caches, generated datasets, random-init encoders
	rm -rf .pytest_cache .ruff_cache .cache/xlt
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
