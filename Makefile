# gen - quickstart targets. Everything installs itself into .venv from PyPI.
PY      ?= python3
VENV    ?= .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
MODEL   ?= examples/wafer_vgg_w4a4.onnx
BOARD   ?= zybo-z7
JOBS    ?= auto

.PHONY: install demo test test-slow lint bench clean

$(VPY):
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# generate, then wafer maps in files -> host client -> server -> simulated device (skipped for other input kinds)
demo: $(STAMP)
	$(VPY) -m gen $(MODEL) --board $(BOARD)
	$(VPY) examples/wafer/client_demo.py build/$(basename $(notdir $(MODEL))) --board $(BOARD)

# GEN_VERILATOR_OPT=-O0: Verilated models compile about 2x faster (gen/sim/runner.py); the tests run few frames
test: $(STAMP)
	GEN_VERILATOR_OPT=-O0 $(VPY) -m pytest -n $(JOBS) -q

# ruff (configured in pyproject.toml) over every Python source; CI fails on any finding
lint: $(STAMP)
	$(VENV)/bin/ruff check .

test-slow: $(STAMP)
	GEN_VERILATOR_OPT=-O0 $(VPY) -m pytest -n $(JOBS) -q -m slow

bench: $(STAMP)
	$(VPY) bench/run.py

clean:
	rm -rf build .pytest_cache sim_build .hypothesis
