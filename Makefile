# restock developer entry points. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench soak stack-up stack-down lint schemas clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

## The main job: replay real Online Retail orders through Kafka, Faust and Redis (embedded stack).
demo: $(STAMP)
	$(VENV)/bin/restock demo $(DEMO_ARGS)

## The whole test suite (unit + integration against the real broker and redis-server).
test: $(STAMP)
	$(PY) -m pytest -q -m "not bench and not soak"

## Benchmarks (never part of `make test`).
bench: $(STAMP)
	$(PY) -m pytest -q -m bench bench $(BENCH_ARGS)

## Long fault-injection runs.
soak: $(STAMP)
	$(PY) -m pytest -q -m soak tests

stack-up: $(STAMP)
	$(VENV)/bin/restock stack up

stack-down: $(STAMP)
	$(VENV)/bin/restock stack down

schemas: $(STAMP)
	$(VENV)/bin/restock schemas export

clean:
	rm -rf $(VENV) .restock build *.egg-info
