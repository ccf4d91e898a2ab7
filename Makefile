# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: venv test lint typecheck pytest run up clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[harness,dev]'
	@touch $@

lint: venv
	$(BIN)/ruff check harness system_under_test tests benchmarks conftest.py

typecheck: venv
	$(BIN)/mypy harness system_under_test

pytest: venv
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

run: venv
	$(BIN)/python -m harness run

up: venv
	$(BIN)/harness up

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
