# Two entry points for a fresh machine:  `make run`  and  `make test`.
# Every target creates (or refreshes) the virtual environment in .venv first, with the
# package's optional features ([all]), the test-suite's needs ([test]) and the linters and
# documentation tools ([dev]).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mtcert-installed

.PHONY: run test test-without-torch lint docs bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The pinned CPU build of torch lies on local disk here; an unpinned torch would
	# pull a multi-GB CUDA build. Fall back to the extra's range elsewhere.
	$(PY) -m pip install -q torch==2.13.0 || echo "torch==2.13.0 not available; the [torch] extra will choose a build"
	$(PY) -m pip install -q -e ".[all,test,dev]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m mtcert run

test: $(STAMP)
	$(PY) -m pytest

# The core's tests and doctests with torch and mtcert_torch unimportable, as on an install
# without the [torch] extra: tests/helpers/no_torch/sitecustomize.py hides them in every
# process that inherits PYTHONPATH.  The first command checks that they are hidden.
NO_TORCH := PYTHONPATH=tests/helpers/no_torch$${PYTHONPATH:+:$$PYTHONPATH}

test-without-torch: $(STAMP)
	$(NO_TORCH) $(PY) -c "import importlib.util as u; assert u.find_spec('torch') is None, 'torch is not hidden'"
	$(NO_TORCH) $(PY) -m pytest tests/core mtcert

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The documentation site (guides + API reference from the docstrings), built strictly:
# any warning (a broken link, an unresolved reference) fails.  Open site/index.html.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

bench: $(STAMP)
	$(PY) -m pytest benchmarks --benchmark-enable
	$(PY) benchmarks/compare.py

clean:
	rm -rf $(VENV) results site .pytest_cache .hypothesis
