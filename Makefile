# speechbrain-probe: `make demo` runs the study on the built-in corpus,
# `make test` runs the test suite. Both set up .venv themselves.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint demo clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

demo: $(STAMP)
	$(PY) -m speechbrain_probe.demo $(if $(QUICK),--quick,)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
