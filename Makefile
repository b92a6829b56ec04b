# speechbrain-probe: `make demo` runs the study on the built-in corpus,
# `make study` evaluates its models at full power, `make test` runs the test
# suite. All set up .venv themselves, with the exact versions of
# constraints.txt (the tested environment).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := constraints.txt
PIP_VERSION := 26.3
# The stamp holds a hash of what the venv was built from; a different hash, or
# an environment that fails its check (a pip killed half-way, a package changed
# by hand), rebuilds the venv instead of trusting the stamp.
STAMP := $(VENV)/.installed
WANT := $(shell { cat setup.py $(LOCK); $(PYTHON) --version; } 2>/dev/null | sha256sum | cut -c1-16)

# Another Python than the tested one is said once per make command, here; the
# environment checks of the stages stay quiet about it.
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
ifeq ($(PYVER),)
ifneq ($(MAKECMDGOALS),clean)
$(error $(PYTHON) does not run: install Python 3.11, or name one: make PYTHON=/path/to/python3.11 ...)
endif
endif
ifeq ($(MAKELEVEL)$(if $(PYVER),,none),0)
ifneq ($(PYVER),3.11)
$(info note: $(PYTHON) is Python $(PYVER); the lock was made and tested on 3.11. The install tries the same versions and everything may work; if a package fails to install or a test fails, use 3.11: make PYTHON=python3.11 ...)
endif
endif
export SBPROBE_ENV_NOTED := 1

.PHONY: install reinstall test lint demo study lock clean

install:
	@if [ -x $(PY) ] && [ "$$(cat $(STAMP) 2>/dev/null)" = "$(WANT)" ] \
	    && $(PY) -m speechbrain_probe.environment --lock $(LOCK) --strict --quiet; then \
	  echo "environment: $(VENV) matches $(LOCK)"; \
	else \
	  $(MAKE) --no-print-directory reinstall; \
	fi

# Always a new venv: pip trusts an installed package's metadata, so a package
# whose files a killed install (or a hand) half-removed would never be repaired.
reinstall:
	@if [ -d $(VENV) ]; then echo "$(VENV) does not match $(LOCK) or does not load: making it anew"; fi
	rm -rf $(VENV)
	@echo "installing the locked environment into $(VENV) (about 3 minutes, 5.7 GB)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check 'pip==$(PIP_VERSION)'
	$(PY) -m pip install -q -c $(LOCK) -e '.[test]'
	$(PY) -m speechbrain_probe.environment --lock $(LOCK) --strict
	@echo $(WANT) > $(STAMP)

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

demo: install
	SBPROBE_STACK_LOADED=1 $(PY) -m speechbrain_probe.demo $(if $(QUICK),--quick,)

# The default demo's four models at full power: every test utterance, five
# conditions, paired robust-vs-baseline intervals (reuses a finished demo).
study: install
	SBPROBE_STACK_LOADED=1 $(PY) -m speechbrain_probe.demo --full

# Refresh the lock: the newest releases that setup.py allows, resolved in a
# throwaway venv; then run `make test` (and `make demo QUICK=1`) before committing.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q 'pip==$(PIP_VERSION)'
	.lock-venv/bin/python -m pip install -q -e '.[test]'
	{ sed -n '/^#/p' $(LOCK); .lock-venv/bin/python -m pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv
	@echo "$(LOCK) refreshed; now: make test"

clean:
	rm -rf $(VENV) .lock-venv *.egg-info .pytest_cache .ruff_cache
