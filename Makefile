# The two commands of the README:
#   make demo   set up a local virtualenv and run the main job
#   make test   set up, then lint, type-check and run every test
# Both install everything they need (apt packages included, via scripts/setup-system).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest property bench clean system

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

system:
	./scripts/setup-system

demo: $(STAMP)
	$(BIN)/allsmi demo

test: system $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests property_tests bench
	$(BIN)/ruff format --check src tests property_tests bench
	$(BIN)/lint-imports --no-cache --no-logo

typecheck: $(STAMP)
	$(BIN)/mypy --strict src tests property_tests

pytest: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q -p no:cacheprovider tests property_tests

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .hypothesis
