# Two entry points (see README): `make demo` installs everything and runs the main job; `make test` runs all tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# faiss/OpenMP busy-wait by default, which makes 2-thread search 15-30x slower on a shared 2-core machine.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo serve test lint bench clean

CHROMIUM := /usr/bin/chromium

install: $(VENV)/.installed $(FASHION_MNIST) $(CHROMIUM)

$(FASHION_MNIST):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq dataset-fashion-mnist

# Debian's Chromium for the web-page tests (Playwright drives it; no browser is downloaded).
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver

# torch comes in as the CPU build torch==2.13.0 through the [torch] extra; never a bare `torch`.
$(VENV)/.installed: pyproject.toml setup.py lookalike/index/_hamming.c lookalike/images/_pngreduce.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[torch,scale,patches,plots,dev]'
	touch $@

demo: install
	$(BIN)/lookalike demo --dir demo

# The demo catalogue in a browser: http://127.0.0.1:8000/ (upload a photo, draw a box). Builds the demo first if needed.
serve: install
	[ -f demo/catalog/catalog.sqlite ] || $(BIN)/lookalike demo --dir demo
	$(BIN)/lookalike serve --catalog demo/catalog --read-only

lint: install
	$(BIN)/ruff check lookalike tests benchmarks
	$(BIN)/mypy lookalike

test: install lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/encode.py
	$(BIN)/python benchmarks/search.py
	$(BIN)/python benchmarks/fashion_precision.py
	$(BIN)/python benchmarks/retrieval.py --write
	$(BIN)/python benchmarks/one_table.py --write
	$(BIN)/python benchmarks/rerank.py --write
	$(BIN)/python benchmarks/duplicates.py --write
	$(BIN)/python benchmarks/duplicates.py --scale 100000 --write
	cd benchmarks && ../$(BIN)/python service.py --clients 8 --duration 60
	$(BIN)/python benchmarks/bingan.py head --features efficientnet-lite0,pixels --ablation
	@echo "service.py and bingan.py print their tables (paste them into BENCHMARKS.md); BinGAN from pixels:"
	@echo "  python benchmarks/bingan.py pixels --device auto --epochs 400 --width 1 (hours on a GPU)"

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
