# The two commands of the README: `make run` (the main job) and `make test` (mypy, then the whole test suite).
# Both set up what they need first (scripts/setup.sh: .venv, toxiproxy-server, nginx).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup run test unit bench clean

setup:
	@bash scripts/setup.sh

run: setup
	$(PY) -m harness.cli run

test: setup
	$(PY) -m mypy
	$(PY) -m pytest -q $(PYTEST_ARGS)

unit: setup
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

bench: setup
	$(PY) -m harness.cli bench --write docs/BENCHMARKS.md

clean:
	rm -rf .harness reports .pytest_cache .hypothesis .mypy_cache
