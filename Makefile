# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: venv test check lint typecheck pytest run up clean docker docker-if-ci chromium-if-ci test-containers chaos

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[harness,dev]'
	@touch $@

lint: venv
	$(BIN)/ruff check harness system_under_test tests benchmarks conftest.py

typecheck: venv
	$(BIN)/mypy harness system_under_test benchmarks

pytest: venv docker-if-ci chromium-if-ci
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The containers tests run whenever a Docker engine answers; under CI (CI set) the engine and the
# images are prepared first and the containers tests may not skip.
docker: venv
	bash scripts/prepare-docker.sh

docker-if-ci: venv
	@if [ -n "$$CI" ]; then bash scripts/prepare-docker.sh; fi

# The browser tests (Locust's "Both queues" tab) need Debian's Chromium; under CI it is installed first.
chromium-if-ci:
	@if [ -n "$$CI" ]; then bash scripts/prepare-chromium.sh; fi

test-containers: docker
	$(BIN)/pytest -m containers

chaos: venv
	$(BIN)/pytest -m chaos $(PYTEST_ARGS)

# make reports any failed recipe as exit status 2; the line printed on failure gives the gate's own status
# (1 FAIL, 2 INCONCLUSIVE, 3 a usage or stack error). CI that branches on the verdict calls
# `.venv/bin/harness run` (or `harness gate`) directly, after `make venv`.
run: venv
	@$(BIN)/python -m harness run; code=$$?; \
	if [ $$code -ne 0 ]; then echo "harness run exited $$code (1 FAIL, 2 INCONCLUSIVE, 3 usage or stack error); make reports it as 2: for the verdict's own exit status run .venv/bin/harness run"; fi; \
	exit $$code

up: venv
	$(BIN)/harness up

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The fast loop: lint, types and every test that starts no stack (under 90 s on a 2-core machine).
# Tests that start a stack are marked `stack` by the fixture they request (harness/pytest_plugin.py);
# the suites users run (parity, chaos, load, security, containers) are left to `make test`.
# Two pytest workers, one test file each at a time (--dist loadfile): the sandbox tests of different files
# use different uid ranges, so files may run side by side.
CHECK_MARKERS := not stack and not slow and not parity and not chaos and not transition and not load and not security and not containers

check: lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile -m "$(CHECK_MARKERS)" $(PYTEST_ARGS)
