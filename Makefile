# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/loyalty

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-sqlite schemathesis install install-test chromium wrk screenshots lint format bench migrations messages smoke clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## make chromium: Debian's Chromium for the browser tests (tests/browser), when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

## make wrk: Debian's wrk, the load generator of `make bench` (bench/api_earn.py), when it is missing.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "Installing Debian's wrk for the API bench"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; }

## make run: the embedded mode (SQLite, file-system broker) with demo data, web + worker + beat.
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py setup_roles
	$(BIN)/python manage.py setup_schedules
	$(BIN)/python manage.py demo_data
	@echo
	@echo "  Loyalty back office: http://127.0.0.1:$(PORT)/   (admin: http://127.0.0.1:$(PORT)/admin/)"
	@echo "  Sign in with one of the demo logins above. Ctrl-C stops the web server, worker and beat."
	@echo
	PORT=$(PORT) DEBUG=$${DEBUG:-true} $(BIN)/honcho -f Procfile.dev start

## make test: the whole suite on PostgreSQL (DATABASE_URL, default a local database).
test: install-test chromium
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/python manage.py ensure_database
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} $(BIN)/pytest -n 2 $(PYTEST_ARGS)

## make test-sqlite: the ledger, campaigns and API tests on SQLite, the embedded mode's database,
## so that every write's one implementation is run on both databases (tests that commit across
## connections are PostgreSQL's; tests/conftest.py skips them here).
test-sqlite: install-test
	rm -f var/test-sqlite.sqlite3
	DATABASE_URL=sqlite:///$(CURDIR)/var/test-sqlite.sqlite3 $(BIN)/pytest -n 2 tests/ledger tests/campaigns tests/api $(PYTEST_ARGS)

## make schemathesis: the channel API against its OpenAPI schema, live, on a fresh PostgreSQL
## database beside DATABASE_URL's (a few minutes; see .ci/schemathesis).
schemathesis: install-test
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} bash .ci/schemathesis

## make screenshots: docs/screenshots/*.png of the main pages, from a fresh demo programme.
screenshots: install-test chromium
	$(BIN)/python docs/screenshots/take.py

## make smoke: the embedded SQLite mode migrates from scratch and serves the sign-in page.
smoke: install
	bash .ci/smoke-embedded

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

messages: install
	$(BIN)/python manage.py makemessages -l nl --ignore=.venv --ignore=tests --ignore=bench
	$(BIN)/python manage.py compilemessages --ignore=.venv

bench: install-test wrk
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/loyalty_bench} $(BIN)/python manage.py ensure_database
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/loyalty_bench} bash bench/run

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
