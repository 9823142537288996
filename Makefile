# The few commands a newcomer needs. `make run` and `make test` set everything up themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/claims_test

.PHONY: run test test-pg lint openapi bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

## Start the service on the embedded SQLite default (http://127.0.0.1:8000, auth off on loopback
## unless CLAIMS_API_KEYS is set).
run: $(VENV)/.installed
	$(BIN)/claims-service serve

## Run the whole test suite on SQLite (set CLAIMS_TEST_DATABASE_URL for PostgreSQL).
test: $(VENV)/.installed
	HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-ci} $(BIN)/pytest

## The same suite on PostgreSQL (creates the database if missing).
test-pg: $(VENV)/.installed
	createdb -h 127.0.0.1 -U postgres claims_test 2>/dev/null || true
	CLAIMS_TEST_DATABASE_URL=$(PG_URL) HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-ci} $(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check service tests migrations
	$(BIN)/ruff format --check service tests migrations
	$(BIN)/mypy

## Regenerate openapi/openapi.json from the app (a test fails when it is stale).
openapi: $(VENV)/.installed
	$(BIN)/claims-service openapi --output openapi/openapi.json

## The claims benchmark on PostgreSQL (needs wrk; database claims_bench is emptied). 9-12 minutes.
bench: $(VENV)/.installed
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/claims_bench.py --duration 20

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis claims.db*
