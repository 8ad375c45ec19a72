# The two commands of the README: `make run` (the main job) and `make test` (mypy, then the whole test suite).
# Both set up what they need first (scripts/setup.sh: .venv, toxiproxy-server, nginx); `make test` also the
# Docker engine and the local images (scripts/docker_setup.sh, as root), and stops an engine it started
# when it ends, however it ends. Without root and without an engine the Docker tests fail saying so.
# bash: the test recipe's EXIT trap must also run when it is interrupted (dash skips it on SIGTERM)
SHELL := /bin/bash
PY := .venv/bin/python
# Bytecode is cached (__pycache__, git-ignored) even where the environment says not to: every pytest child
# of the suites and the mutant matrix would otherwise compile the harness and its tests again (~2 s each).
unexport PYTHONDONTWRITEBYTECODE
PYTEST_ARGS ?=

.PHONY: setup docker run test unit bench clean

setup:
	@bash scripts/setup.sh

# Not fatal: the other tests still run, and the Docker tests fail naming what is missing.
docker:
	-@bash scripts/docker_setup.sh

run: setup
	$(PY) -m harness.cli run

test: setup docker
	@trap 'bash scripts/docker_setup.sh stop' EXIT; trap 'exit 130' INT TERM; \
	$(PY) -m mypy && $(PY) -m pytest -q $(PYTEST_ARGS)

unit: setup
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

bench: setup
	$(PY) -m harness.cli bench --write docs/BENCHMARKS.md

clean:
	rm -rf .harness .pytest_cache .hypothesis .mypy_cache
	find reports -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
