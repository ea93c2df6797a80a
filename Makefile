# restock developer entry points. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-cluster lint bench bench-review policy-proxy frontier soak soak-large stack-up stack-down schemas clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

## The main job: replay real Online Retail orders through Kafka, Faust and Redis (embedded stack).
demo: $(STAMP)
	$(VENV)/bin/restock demo $(DEMO_ARGS)

## Decisions on a frontier (issue #17): restock's closed loop (in-process, same code as the worker)
## swept over its lost-unit cost, against the ERP reorder rules, on the shipped daily data and on
## both weekly promo sets (../shared/data/promo, when present). Writes out/frontier/<set>/.
PROMO ?= ../shared/data/promo
FRONTIER_ARGS ?= --targets default --ablation
frontier: $(STAMP)
	$(VENV)/bin/restock simulate --no-progress $(FRONTIER_ARGS) --label "Online Retail, 300 SKUs, daily, L 7 d" \
		--frontier-dir out/frontier/online_retail
	@for set in tuna cheese; do \
		if [ -f $(PROMO)/$${set}_weekly.csv ]; then \
			$(VENV)/bin/restock simulate --no-progress --data $(PROMO)/$${set}_weekly.csv --format generic \
				--freq W --skus 0 $(FRONTIER_ARGS) --label "$$set, weekly, L 7 d" \
				--frontier-dir out/frontier/$$set || exit 1; \
		else echo "$(PROMO)/$${set}_weekly.csv not found: skipped"; fi; \
	done

## Lint (ruff, config in pyproject.toml): part of `make test`.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

## The whole test suite: lint, then unit + integration against the real broker and redis-server.
## Its Redis Cluster part (issue #21) runs in the same session on a local 3-master cluster:
## tests/integration/test_redis_cluster.py (state store contract, slots, fences, per-node writes,
## WAIT with replicas, a worker, `stack up --redis-cluster`) and test_redis_cluster_faults.py
## (worker kill -9, exit after the state write, two workers), one run each.
## Two pytest-xdist workers, one test file each at a time (--dist loadfile: a file's module
## fixtures start once), each with its own embedded broker and redis-server on free ports: the
## integration tests mostly wait on worker processes, so the suite takes about half the time of
## one process (6.6 min against 13.5 on 2 cores, 2026-12-07).
test: $(STAMP) lint
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not bench and not soak"

## The whole integration suite on a local Redis Cluster (RESTOCK_TEST_REDIS=cluster).
test-cluster: $(STAMP)
	RESTOCK_TEST_REDIS=cluster RESTOCK_TEST_DOCKER=0 $(PY) -m pytest -q -m "not bench and not soak" tests/integration

## Benchmarks (never part of `make test`): six scripts under bench/, each a ratio against a baseline
## measured in the same run, then one summary table (out/bench/summary.json). BENCH_ARGS=--quick for
## reduced knobs; BENCH_ARGS="--only latency" for one; docs/performance.md for knobs and costs.
bench: $(STAMP)
	$(PY) bench/run_all.py $(BENCH_ARGS)

## Period review kernel (issue #19): one close of 100k SKUs through agents.review.kernel vs the
## per-SKU decide in the same run (CSL and fill rate), and a 1M-SKU pass; then a partition's close
## with cold SKUs vs cached, and the stall of order batches during it (bench/review_sweep.py).
## REVIEW_ARGS=--quick.
bench-review: $(STAMP)
	$(PY) bench/review_kernel.py $(REVIEW_ARGS)
	$(PY) bench/review_sweep.py $(REVIEW_ARGS)

## Research simulator of the window policy (issue #17): variants and oracles of the demand rate and
## dispersion on one frontier against the baseline rules, in seconds; PROXY_ARGS="--data F --freq W".
policy-proxy: $(STAMP)
	$(PY) bench/policy_proxy.py $(PROXY_ARGS)

## Reliability soak (issue #9): every fault test with 20 seeds, 30 s outages, and the Redis Cluster
## failover (kill -9 of a master, issue #21) with 20 seeds; prints a summary table.
SOAK_SEEDS ?= 20
SOAK_OUTAGE_S ?= 30
soak: $(STAMP)
	mkdir -p out
	rm -f out/soak.jsonl
	RESTOCK_SOAK=1 RESTOCK_FAULT_SEEDS=$(SOAK_SEEDS) RESTOCK_OUTAGE_SEEDS=$(SOAK_SEEDS) \
	RESTOCK_OUTAGE_S=$(SOAK_OUTAGE_S) RESTOCK_SOAK_REPORT=out/soak.jsonl \
	$(PY) -m pytest -q -p no:randomly tests/integration/test_faults.py tests/integration/test_reliability.py \
		tests/integration/test_redis_cluster_failover.py; \
	rc=$$?; $(PY) tests/integration/soak_report.py out/soak.jsonl; exit $$rc

## Reliability at scale: every fault test on 2,000 SKUs x 4 weeks (34,485 orders, 12,699
## inventory events), 3 seeds each, both rebalance kinds, 10 s outages, waits and timeouts x6.
SOAK_LARGE_SEEDS ?= 3
soak-large: $(STAMP)
	mkdir -p out
	rm -f out/soak_large.jsonl
	RESTOCK_SOAK=1 RESTOCK_FAULT_SKUS=2000 RESTOCK_FAULT_END=2011-02-01 RESTOCK_FAULT_WAIT_SCALE=6 \
	RESTOCK_FAULT_SEEDS=$(SOAK_LARGE_SEEDS) RESTOCK_OUTAGE_SEEDS=$(SOAK_LARGE_SEEDS) RESTOCK_OUTAGE_S=10 \
	RESTOCK_SOAK_REPORT=out/soak_large.jsonl \
	$(PY) -m pytest -q -p no:randomly tests/integration/test_faults.py tests/integration/test_reliability.py; \
	rc=$$?; $(PY) tests/integration/soak_report.py out/soak_large.jsonl; exit $$rc

stack-up: $(STAMP)
	$(VENV)/bin/restock stack up

stack-down: $(STAMP)
	$(VENV)/bin/restock stack down

schemas: $(STAMP)
	$(VENV)/bin/restock schemas export

clean:
	rm -rf $(VENV) .restock build *.egg-info
