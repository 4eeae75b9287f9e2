# Two commands matter: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run demo manage test test-fast lint format psql pg_dump pg_restore lock clean screenshots soak audit env

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# `make run` installs only what running needs: the runtime and the `local` extra. Targets
# that test, lint or measure install everything (`dev`). Each re-installs only when the
# dependency files change; `dev` holds `local`, so it stamps both.
$(VENV)/.installed-run: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e ".[local]"
	touch $@

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed  ## Create .venv and install the project with everything (tests, lint)

run: $(VENV)/.installed-run  ## Run the whole stack; without DATABASE_URL / REDIS_URL it starts its own (devstack/run.py)
	@$(BIN)/python -m devstack.run

demo: $(VENV)/.installed-run  ## Simulated cameras for a minute, beside a running `make run`
	DJANGO_SETTINGS_MODULE=config.settings.local $(BIN)/python manage.py simulate_violations --rate 2 --duration 60

manage: $(VENV)/.installed-run  ## manage.py through .venv, on make run's database: make manage ARGS="changepassword demo"
	@$(BIN)/python manage.py $(ARGS)

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

psql: $(VENV)/.installed-run  ## psql on the database in use (DATABASE_URL, or make run's embedded one)
	@$(BIN)/python -m devstack.psql $(ARGS)

pg_dump: $(VENV)/.installed-run  ## pg_dump of the database in use, by a pg_dump of its version: make pg_dump ARGS="-Fc -f x.dump"
	@$(BIN)/python -m devstack.psql --client=pg_dump $(ARGS)

pg_restore: $(VENV)/.installed-run  ## pg_restore into the database in use: make pg_restore ARGS="--clean --if-exists x.dump"
	@$(BIN)/python -m devstack.psql --client=pg_restore $(ARGS)

# template-only
.PHONY: bench
bench: install  ## Ours vs the public recipe's design: docs/benchmarks.md (BENCH_QUICK=1: a tiny run)
	$(BIN)/python -m bench $(if $(BENCH_QUICK),--quick) $(BENCH_ARGS)
# /template-only

env:  ## .env for docker compose from .env.example, with a fresh random DJANGO_SECRET_KEY
	$(PYTHON) scripts/new_env.py

lock: install  ## Re-pin constraints.txt from the current .venv
	{ head -n 2 constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v '^-e'; } > constraints.tmp
	mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
