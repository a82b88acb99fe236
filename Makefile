# The two commands: `make run` (the embedded demo) and `make test` (the whole suite).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# Embedded mode: no external services, whatever the calling shell has set.
EMBEDDED := env -u DATABASE_URL -u REDIS_URL -u DEBUG -u SECRET_KEY -u ALLOWED_HOSTS

.PHONY: run test install lint typecheck pytest browser clean

$(VENV)/.installed: requirements/base.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(EMBEDDED) $(PY) manage.py migrate --noinput
	$(EMBEDDED) $(PY) manage.py seed_demo
	@echo "reflib demo on http://127.0.0.1:8000  (desk: /desk/, admin: /admin/)"
	$(EMBEDDED) $(PY) manage.py rundemo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy .

browser:
	@sh scripts/ensure-test-packages

pytest: install browser
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(VENV) var staticfiles
