# Two commands matter: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run demo test test-fast lint format psql lock clean screenshots soak audit bench env

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when the dependency files change.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed  ## Create .venv and install the project and its dev tools

run: install  ## Run the whole stack; without DATABASE_URL / REDIS_URL it starts its own (devstack/run.py)
	@$(BIN)/python -m devstack.run

demo: install  ## Simulated cameras for a minute, beside a running `make run`
	DJANGO_SETTINGS_MODULE=config.settings.local $(BIN)/python manage.py simulate_violations --rate 2 --duration 60

lint: install  ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint  ## Lint, then the whole suite against real PostgreSQL, Redis, Daphne and psql
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: lint  ## Lint, then only the tests that start no process (server, browser, psql)
	$(BIN)/python -m pytest -m "not slow and not screenshots and not soak" $(PYTEST_ARGS)

soak: install  ## Long delivery soaks (2,000 commits/s for 30 s); .ci/run runs them
	$(BIN)/python -m pytest -m soak -q $(PYTEST_ARGS)

audit: install  ## Known vulnerabilities in constraints.txt (says "skipped" when it cannot look)
	$(BIN)/python scripts/audit_dependencies.py constraints.txt

screenshots: install  ## Save docs/screenshot-desktop.png and docs/screenshot-phone.png
	$(BIN)/python -m pytest -m screenshots -q

bench: install  ## Ours vs the public recipe's design: docs/benchmarks.md (BENCH_QUICK=1: a tiny run)
	$(BIN)/python -m bench $(if $(BENCH_QUICK),--quick) $(BENCH_ARGS)

psql: install  ## psql on the database in use (DATABASE_URL, or make run's embedded one)
	@$(BIN)/python -m devstack.psql

env:  ## .env for docker compose from .env.example, with a fresh random DJANGO_SECRET_KEY
	$(PYTHON) scripts/new_env.py

lock: install  ## Re-pin constraints.txt from the current .venv
	{ head -n 2 constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^-e'; } > constraints.tmp
	mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
