# Encore — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lock bench bench-core bench-store bench-http bench-queue bench-cache-choice bench-faults mysql browser wrk cache clean

# constraints.txt pins every package to the release tested, so a clone installs what CI ran.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

## Start the service on http://127.0.0.1:8000 with the embedded SQLite store, behind its HTTP cache.
run: $(STAMP) cache
	$(BIN)/encore serve

## The whole suite: unit, integration (real MariaDB), end-to-end over HTTP and in Chromium.
test: $(STAMP) mysql browser cache
	$(BIN)/python -m pytest -q

## Unit tests only (no Ray, no database).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

## Re-pin constraints.txt: the newest releases pyproject.toml allows, resolved in a fresh venv.
lock:
	set -e; scratch=$$(mktemp -d); trap 'rm -rf "$$scratch"' EXIT; \
	$(PYTHON) -m venv "$$scratch"; \
	"$$scratch/bin/pip" install --quiet --upgrade pip; \
	"$$scratch/bin/pip" install --quiet -e ".[dev]"; \
	{ echo "# Every package \`make\` installs, pinned to the releases tested; regenerate with \`make lock\`."; \
	  echo "# pyproject.toml states the ranges the code supports; this file picks one tested point in them."; \
	  "$$scratch/bin/pip" freeze --exclude-editable; } > constraints.txt.new; \
	mv constraints.txt.new constraints.txt

## Start MariaDB if it is installed but not running.
mysql:
	scripts/ensure-mysql.sh

## Install Debian's Chromium for the browser test if it is missing (never a downloaded browser).
browser:
	scripts/ensure-chromium.sh

bench-core: $(STAMP) mysql
	$(BIN)/python -m loadtest.bench_core

## The store at the sale's scale, on a MariaDB of its own (the machine's mariadbd binary).
bench-store: $(STAMP)
	$(BIN)/python -m loadtest.bench_store

bench-http: $(STAMP) mysql wrk cache
	$(BIN)/python -m loadtest.bench_http

bench-queue: $(STAMP) wrk cache
	$(BIN)/python -m loadtest.bench_queue

## The HTTP cache in front of Serve: Debian's nginx-light, installed if missing (the service runs without it).
cache:
	scripts/ensure-nginx.sh

## nginx, HAProxy's cache and Varnish in front of the same upstream (installs the two others).
bench-cache-choice: $(STAMP) wrk cache
	command -v varnishd >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq varnish haproxy >/dev/null)
	$(BIN)/python -m loadtest.bench_cache_choice

## The HTTP benchmarks drive load with wrk (Debian package).
wrk:
	scripts/ensure-wrk.sh

bench: $(STAMP) mysql cache
	$(BIN)/python -m loadtest.sellout

## A sale with faults injected in turn (a block, a replica, the queue actor, MariaDB, the whole
## service), each audited; MariaDB is a private mariadbd of its own on port 13306.
bench-faults: $(STAMP) cache
	$(BIN)/python -m loadtest.faults --report docs/bench/faults.md

clean:
	rm -rf $(VENV) data reports .pytest_cache .hypothesis
