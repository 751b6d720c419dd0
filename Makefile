# badkv developer commands. `make run` starts a 3-node local cluster; `make test` runs the suite.
# `make run-tls` makes certificates under data/certs (once) and starts the same cluster over TLS.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-badkv
BENCH_STAMP := $(VENV)/.installed-bench

CERTS := data/certs
TLS_NODES := badkv1 badkv2 badkv3

.PHONY: run run-tls test test-fast bench soak install clean

run: $(STAMP)
	$(BIN)/honcho start

run-tls: $(STAMP) $(TLS_NODES:%=$(CERTS)/%.crt)
	$(BIN)/honcho -f Procfile.tls start

$(CERTS)/ca.crt: | $(STAMP)
	$(BIN)/badkvctl certs init --dir $(CERTS)

$(CERTS)/%.crt: | $(CERTS)/ca.crt
	$(BIN)/badkvctl certs issue $* --host 127.0.0.1,localhost --dir $(CERTS)

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not process and not fault"

# Issue 12's comparison (bare Flask, durable badkv, etcd, PySyncObj), about 10 minutes; see bench/README.md.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py --scenarios perf

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

soak: $(STAMP)
	$(BIN)/python -m badkv.testing.soak --minutes $${MINUTES:-30}

install: $(STAMP)

$(STAMP): setup.py setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) data *.egg-info .pytest_cache
