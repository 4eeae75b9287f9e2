# Two commands matter: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run test lint format psql lock clean screenshots soak audit bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when the dependency files change.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed  ## Create .venv and install the project and its dev tools

run: install  ## Run the whole stack (needs DATABASE_URL and REDIS_URL for now)
	@test -n "$$DATABASE_URL" || { echo "Set DATABASE_URL (and REDIS_URL): see README"; exit 2; }
	DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-config.settings.local} $(BIN)/python manage.py migrate --noinput
	DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-config.settings.local} $(BIN)/python manage.py listen_notify & \
	  listener=$$!; trap 'kill $$listener 2>/dev/null; wait $$listener' EXIT INT TERM; \
	  DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-config.settings.local} $(BIN)/daphne -b 127.0.0.1 -p $${PORT:-8000} config.asgi:application

lint: install  ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint  ## Lint, then the whole suite against real PostgreSQL, Redis, Daphne and psql
	$(BIN)/python -m pytest $(PYTEST_ARGS)

soak: install  ## Long delivery soaks (2,000 commits/s for 30 s); .ci/run runs them
	$(BIN)/python -m pytest -m soak -q $(PYTEST_ARGS)

audit: install  ## Known vulnerabilities in constraints.txt (says "skipped" when it cannot look)
	$(BIN)/python scripts/audit_dependencies.py constraints.txt

screenshots: install  ## Save docs/screenshot-desktop.png and docs/screenshot-phone.png
	$(BIN)/python -m pytest -m screenshots -q

bench: install  ## Ours vs the public recipe's design: docs/benchmarks.md (BENCH_QUICK=1: a tiny run)
	$(BIN)/python -m bench $(if $(BENCH_QUICK),--quick) $(BENCH_ARGS)

psql:  ## psql on the database in use
	@test -n "$$DATABASE_URL" || { echo "Set DATABASE_URL"; exit 2; }
	psql "$$DATABASE_URL"

lock: install  ## Re-pin constraints.txt from the current .venv
	{ head -n 2 constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^-e'; } > constraints.tmp
	mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
