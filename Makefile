PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two stamps: `make run` needs the runtime only; `make test` adds the test and lint tools.
RUN_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed
INSTALL := PYTHON=$(PYTHON) sh scripts/install-venv.sh $(VENV)

.PHONY: run test lint bench clean

$(RUN_STAMP): pyproject.toml
	$(INSTALL) -e .
	touch $@

# A dev install holds the runtime too, so it satisfies `make run` as well.
$(DEV_STAMP): pyproject.toml
	$(INSTALL) -e '.[dev]'
	touch $@ $(RUN_STAMP)

# make run ARGS="--port 9000 --data-dir /srv/anigraph"  (or ANIGRAPH_PORT=9000 make run)
run: $(RUN_STAMP)
	$(BIN)/anigraph serve $(ARGS)

test: $(DEV_STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(DEV_STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/mypy

bench: $(DEV_STAMP)
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info
