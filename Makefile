# Two commands on a fresh machine: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

PROD_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/backorders
PROD_BROKER_URL ?= redis://127.0.0.1:6379/0
PROD_ENV = DJANGO_SETTINGS_MODULE=config.settings.production DATABASE_URL=$(PROD_DATABASE_URL) \
	CELERY_BROKER_URL=$(PROD_BROKER_URL) SECRET_KEY="$$(cat var/secret_key)" \
	SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false

.PHONY: demo test install lint format migrate serve clean-db production

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $@

install: $(VENV)/.installed

migrate: install
	@mkdir -p var
	$(PY) manage.py migrate --no-input

demo: migrate
	$(PY) manage.py seed_demo
	@echo "Serving the back office on http://$(HOST):$(PORT)/admin/ (Ctrl-C to stop)"
	$(PY) manage.py runserver $(HOST):$(PORT)

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-db:
	rm -f var/db.sqlite3 var/db.sqlite3-wal var/db.sqlite3-shm

# The production shape on one machine: gunicorn, a Celery worker and beat (honcho runs the Procfile)
# against the local PostgreSQL and Redis. Scale out: more web/worker processes on the same database and broker.
production: install
	@mkdir -p var
	@test -s var/secret_key || $(PY) -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret_key
	$(PY) -c "import psycopg; c = psycopg.connect('$(PROD_DATABASE_URL)'.rsplit('/', 1)[0] + '/postgres', autocommit=True); \
	  c.execute('CREATE DATABASE backorders') if not c.execute(\"SELECT 1 FROM pg_database WHERE datname = 'backorders'\").fetchone() else None"
	$(PROD_ENV) $(PY) manage.py migrate --no-input
	$(PROD_ENV) $(PY) manage.py collectstatic --no-input --verbosity 0
	$(PROD_ENV) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile
