# The README's two commands: `make reproduce` (the main job) and `make test`.
# Each creates the virtual environment .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PROFILE ?= cpu
## Runs trained at once by `make reproduce` (processes, each with cores/JOBS threads). auto: one 1-thread run
## per core on a CPU (on 2 cores two 1-thread runs train 3-15% more images/s than one 2-thread run,
## benchmarks/cpu_setups.py), the device check's packing factor on CUDA (1 until one is committed).
JOBS ?= auto
## Data roots for PROFILE=paper, e.g. DATA="cifar10=/data/cifar imagenet=/data/ilsvrc" (or $$RESNETLIB_DATA_ROOTS).
DATA ?=
TORCH_PIN := torch==2.14.1 torchvision==0.29.1

.PHONY: reproduce test nbval env data lab bench clean-reports

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PIN)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

env: $(BIN)/.installed

## Fashion-MNIST for the cpu and smoke profiles: Debian's package where apt-get is available, else
## torchvision downloads it on first use into ./data.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then apt-get install -y -qq dataset-fashion-mnist; \
	else echo "Fashion-MNIST will be downloaded by torchvision into ./data on first use"; fi

reproduce: env data
	$(BIN)/resnetlib reproduce --profile $(PROFILE) --jobs $(JOBS) $(if $(DATA),--data $(DATA))

## The tests: pytest on TEST_WORKERS processes (pytest-xdist), one compute thread each; a test file runs
## whole on one worker, files with more `slow` tests first (tests/conftest.py). tests/conftest.py also
## points the run cache and the notebooks' default output folder at a temporary folder: nothing is written
## into the checkout. Every notebook runs once, in tests/test_notebooks_smoke.py, which also covers what
## nbval checked (see `make nbval`).
TEST_WORKERS ?= 2
test: env data
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests

## nbval over every notebook with its stored defaults (the "Run All" check of JupyterLab), outside
## `make test`, which covers it; output and runs go to a temporary folder.
nbval: env data
	@tmp=$$(mktemp -d) && RESNETLIB_RUNS_DIR=$$tmp/runs RESNETLIB_REPORTS_DIR=$$tmp/reports \
	  $(BIN)/python -m pytest -q -ra -p no:cacheprovider --nbval-lax notebooks; rc=$$?; rm -rf $$tmp; exit $$rc

lab: env
	$(BIN)/jupyter lab notebooks

bench: env
	$(BIN)/python benchmarks/train_throughput.py
