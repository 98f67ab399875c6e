# Quick start: `make demo` and `make test` each build their own virtual
# environment from nothing. torch is pinned so that pip takes the CPU wheel.
PYTHON ?= python3
VENV ?= .venv
TORCH_PIN ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: demo test lint benchmark clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -e ".[test,doc]" $(TORCH_PIN)
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m skvdae demo --out demo_output

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

benchmark: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_embedder.py
	$(BIN)/python benchmarks/bench_sampler.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
