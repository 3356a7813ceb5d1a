# The two commands: `make dev` runs the whole system, `make test` runs every test.
# Both install what is missing first (scripts/bootstrap.sh), idempotently.

.PHONY: setup dev test test-secure lint schema

setup:
	@bash scripts/bootstrap.sh

dev: setup
	.venv/bin/heysh dev

test: setup
	.venv/bin/python -m pytest

# CI's second pass: the tests marked secure_profile, against stores with TLS and credentials and
# with the api and worker in production mode (README: "The secure profile").
test-secure: setup
	HEYSH_TEST_PROFILE=secure .venv/bin/python -m pytest -m secure_profile

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

schema: setup
	.venv/bin/heysh schema > schema.graphql
