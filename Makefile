# Two entry points for a fresh machine:  `make run`  and  `make test`.
# Both create (or refresh) the virtual environment in .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mtcert-installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The pinned CPU build of torch lies on local disk here; an unpinned torch would
	# pull a multi-GB CUDA build. Fall back to the extra's range elsewhere.
	$(PY) -m pip install -q torch==2.13.0 || echo "torch==2.13.0 not available; the [torch] extra will choose a build"
	$(PY) -m pip install -q -e ".[all]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m mtcert run

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) -m pytest benchmarks --benchmark-enable
	$(PY) benchmarks/compare.py

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
