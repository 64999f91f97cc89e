# authd — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
AUTHD  := $(BIN)/authd
DEPS   := $(VENV)/.dependencies
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck bench fuzz lock clean

$(DEPS): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip >/dev/null
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(DEPS)

# The verifier is installed built, not editable: its per-token modules are compiled
# with mypyc (verifier/setup.py), so it is rebuilt whenever a source of it changes.
$(STAMP): $(DEPS) verifier/setup.py verifier/pyproject.toml $(wildcard verifier/src/authd_verifier/*.py)
	$(BIN)/python -m pip install -q --no-deps ./verifier
	touch $(STAMP)

install: $(STAMP)

# What the verifier's build must have made here: compiled wherever a C compiler
# is (a build that fell back to Python there is a failure the tests name).
VERIFIER_FLAVOUR ?= $(if $(shell command -v cc),compiled,python)

## Start the service on the embedded default (SQLite, no Redis, KEK under keys/).
run: $(STAMP)
	$(AUTHD) migrate
	$(AUTHD) bootstrap --if-absent
	$(AUTHD) serve

## Make sure PostgreSQL and Redis are reachable, then run the whole suite.
test: $(STAMP)
	bash tests/services.sh
	AUTHD_VERIFIER_FLAVOUR=$(VERIFIER_FLAVOUR) $(BIN)/python -m pytest $(PYTEST_ARGS)
	@echo "The verifier's tests again, on its pure-Python flavour (the compiled one ran above):"
	AUTHD_VERIFIER_FLAVOUR=python PYTHONPATH=verifier/src $(BIN)/python -m pytest -q tests/verifier $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check service tests verifier
	$(BIN)/mypy

bench: $(STAMP)
	bash tests/bench/run.sh

## schemathesis against a live server, driven by /openapi.json: no 5xx, every
## response as documented. Bounded: FUZZ_EXAMPLES test cases per operation.
FUZZ_EXAMPLES ?= 30
fuzz: $(STAMP)
	bash tests/services.sh
	$(BIN)/python -m tests.fuzz.run --max-examples $(FUZZ_EXAMPLES) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

## Re-pin every dependency from pyproject.toml into requirements.lock.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q -e verifier -e '.[dev,tracing]'
	(echo "# Pinned dependency set for authd (runtime + dev). Regenerate with: make lock"; \
	 .lock-venv/bin/pip freeze --exclude-editable | grep -v '^#') > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
