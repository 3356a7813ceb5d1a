# The two commands: `make dev` runs the whole system, `make test` runs every test.
# Both install what is missing first (scripts/bootstrap.sh), idempotently.

.PHONY: setup dev test lint schema

setup:
	@bash scripts/bootstrap.sh

dev: setup
	.venv/bin/heysh dev

test: setup
	.venv/bin/python -m pytest

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

schema: setup
	.venv/bin/heysh schema > schema.graphql
