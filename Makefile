# The README's two commands: `make reproduce` (the main job) and `make test`.
# Each creates the virtual environment .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PROFILE ?= cpu
TORCH_PIN := torch==2.14.1 torchvision==0.29.1

.PHONY: reproduce test env data lab bench clean-reports

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
	$(BIN)/resnetlib reproduce --profile $(PROFILE)

test: env data
	$(BIN)/python -m pytest -q -ra tests
	$(BIN)/python -m pytest -q -ra --nbval-lax notebooks

lab: env
	$(BIN)/jupyter lab notebooks

bench: env
	$(BIN)/python benchmarks/train_throughput.py
