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
## into the checkout. Then nbval over every stored notebook with its parameters-cell defaults (the "Run All"
## check of JupyterLab), which are the smoke scale: the smoke run of every notebook
## (tests/test_notebooks_smoke.py) trains into a fresh folder ($RESNETLIB_SMOKE_RUNS_DIR), and the nbval pass
## reuses those nets from it instead of training them again.
TEST_WORKERS ?= 2
NBVAL := $(BIN)/python -m pytest -q -ra -p no:cacheprovider -n $(TEST_WORKERS) --dist loadscope --nbval-lax notebooks
## The suite writes up to ~6 GB at once under the temporary folder (checkpoints of the ImageNet-style nets and
## detectors; measured 2026-12-06): a disk with less free space fails with "No space left on device" midway.
TEST_DISK_GB := 6
test: env data
	@tmp=$$(mktemp -d) && export OMP_NUM_THREADS=1 && \
	  free=$$(df -Pk "$$tmp" | awk 'NR==2 {print int($$4 / 1048576)}') && \
	  if [ "$$free" -lt $(TEST_DISK_GB) ]; then echo "warning: $$free GB free under $$(dirname $$tmp); the tests" \
	    "write up to ~$(TEST_DISK_GB) GB there: free some space or point TMPDIR at a larger disk" >&2; fi && \
	  RESNETLIB_SMOKE_RUNS_DIR=$$tmp/runs \
	    $(BIN)/python -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder tests && \
	  RESNETLIB_RUNS_DIR=$$tmp/runs RESNETLIB_REPORTS_DIR=$$tmp/reports $(NBVAL); rc=$$?; rm -rf $$tmp; exit $$rc

## nbval alone (part of `make test`): trains the smoke-scale nets into a fresh temporary run cache first.
nbval: env data
	@tmp=$$(mktemp -d) && RESNETLIB_RUNS_DIR=$$tmp/runs RESNETLIB_REPORTS_DIR=$$tmp/reports OMP_NUM_THREADS=1 \
	  $(NBVAL); rc=$$?; rm -rf $$tmp; exit $$rc

lab: env
	$(BIN)/jupyter lab notebooks

bench: env
	$(BIN)/python benchmarks/train_throughput.py
