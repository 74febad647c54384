# Two set-up commands: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-all bench lint clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# PyTorch pinned: the CPU wheel; an unpinned torch pulls gigabytes of CUDA packages.
	$(PY) -m pip install --quiet torch==2.13.0
	# Dask, distributed and Zarr pinned beside it (checked: they keep torch 2.13.0)
	$(PY) -m pip install --quiet "dask[array,dataframe]==2026.8.0" distributed==2026.8.0 zarr==3.1.6
	$(PY) -m pip install --quiet -e ".[test,parquet,deep,scale]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/latentkit demo --out demo-report

test: $(STAMP)
	$(PY) -m pytest -q

# the fuzz suite (tests/fuzz/) with its long hypothesis profile: 500 examples per property
test-all: $(STAMP)
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q -m "slow or not slow"

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	for b in gmm linear lds bayesnet tables lda; do $(PY) benchmarks/$$b.py || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) demo-report build *.egg-info src/*.egg-info
