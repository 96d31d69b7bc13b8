# Nguồn — everything a fresh machine needs is done from here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/nguon_test

.PHONY: run test test-sqlite test-postgres lint format install install-test translations clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test,dev]'
	touch $@

# Browser tests drive Debian's Chromium (never a downloaded browser build).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null

install: $(VENV)/.installed translations
install-test: $(VENV)/.installed-test translations $(CHROMIUM)

translations: $(VENV)/.installed
	$(BIN)/pybabel compile --use-fuzzy -d nguon/translations >/dev/null

run: install  ## install, migrate, load the demo, serve on http://127.0.0.1:5000
	$(BIN)/nguon db upgrade
	$(BIN)/nguon demo load
	$(BIN)/nguon run --host $(HOST) --port $(PORT)

test: install-test  ## the whole suite on SQLite, then on PostgreSQL when one answers
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$NGUON_TEST_DATABASE_URL" ] || $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 2)" 2>/dev/null; then \
		$(MAKE) --no-print-directory test-postgres; \
	else \
		echo "PostgreSQL: no server on 127.0.0.1:5432 and NGUON_TEST_DATABASE_URL unset; skipped"; \
	fi

test-sqlite: install-test
	@echo "== tests on SQLite =="
	env -u NGUON_TEST_DATABASE_URL $(BIN)/pytest $(PYTEST_ARGS)

test-postgres: install-test
	@echo "== tests on PostgreSQL =="
	NGUON_TEST_DATABASE_URL=$${NGUON_TEST_DATABASE_URL:-$(PG_URL)} $(BIN)/pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
	find nguon/translations -name '*.mo' -delete

messages: install  ## extract the messages and merge them into the catalogues
	$(BIN)/pybabel extract -F babel.cfg -k _l -o nguon/translations/messages.pot --no-location --sort-output .
	$(BIN)/pybabel update -i nguon/translations/messages.pot -d nguon/translations --no-fuzzy-matching
