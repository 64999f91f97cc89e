# authd — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
AUTHD  := $(BIN)/authd
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck bench fuzz lock clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip >/dev/null
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@if [ -f verifier/pyproject.toml ]; then $(BIN)/python -m pip install -q --no-deps -e verifier; fi
	touch $(STAMP)

install: $(STAMP)

## Start the service on the embedded default (SQLite, no Redis, KEK under keys/).
run: $(STAMP)
	$(AUTHD) migrate
	$(AUTHD) bootstrap --if-absent
	$(AUTHD) serve

## Make sure PostgreSQL and Redis are reachable, then run the whole suite.
test: $(STAMP)
	bash tests/services.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
