# sonoreview: the two commands of the README.
#   make demo   set up and run the demo on http://127.0.0.1:8000 (SQLite, demo users, demo exams)
#   make test   start/install PostgreSQL, Redis and the DICOM tools, then lint and run every test
# Each helper script explains itself; this file only wires them together.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-pyproject

# The slowest tests are listed after every run: CI must stay under 15 minutes on 2 cores.
PYTEST_ARGS ?= --durations=15

.PHONY: demo test lint services venv clean-demo viewer

# Re-install only when pyproject.toml changed since the last successful install.
$(STAMP): pyproject.toml
	@PYTHON="$(PYTHON)" scripts/bootstrap-venv.sh "$(VENV)"
	@touch "$(STAMP)"

venv: $(STAMP)

services:
	@scripts/ensure-services.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) services lint
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	@scripts/demo.sh

# Forget the demo database, media and demo DICOM (var/); the next `make demo` starts afresh.
clean-demo:
	rm -rf var/demo.sqlite3 var/media var/demo-dicom var/log

# Rebuild the exam viewer bundle (static/viewer, committed) from frontend/ — needs Node 20 + npm.
viewer:
	cd frontend && npm ci && npm run build
