# Two commands matter on a fresh machine: `make demo` and `make test`.
# Everything they need (Python venv under .venv, Rust build) is set up here.

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# Two cores: keep cargo and test fan-out modest.
export CARGO_BUILD_JOBS ?= 2
export RUST_TEST_THREADS ?= 2
# Test builds carry the test-only fault switches (DATAERAI_FAULTS); the same
# features go to `build` and `test` so cargo reuses one set of binaries.
TEST_FEATURES := --features dataerai-server/fault-injection,dataerai/fault-injection

.PHONY: all build build-release venv test test-rust test-python demo bench bench-deps lint fmt clean

all: build

## Debug build of every binary and test target, reused by all test stages.
build:
	$(CARGO) build --workspace --all-targets --locked $(TEST_FEATURES)

build-release:
	$(CARGO) build --release --bins --locked

$(VENV)/.installed: sdk/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e 'sdk/python[dev]'
	touch $@

venv: $(VENV)/.installed

## The whole suite: Rust unit + integration tests, then the Python SDK suite
## against real server and daemon processes built once above.
test: build venv test-rust test-python

test-rust:
	$(CARGO) test --workspace --locked $(TEST_FEATURES)

test-python: venv
	DATAERAI_BIN_DIR=$(CURDIR)/target/debug $(VPY) -m pytest sdk/python/tests -q

## Build release binaries, start an embedded server on loopback, sign in and
## run the Python quick start end to end; cleans up after itself.
demo: build-release venv
	DATAERAI_BIN_DIR=$(CURDIR)/target/release VPY=$(CURDIR)/$(VPY) scripts/demo.sh

## Benchmark (not part of `make test`): writes bench-results/results.{json,md}.
bench: build-release venv bench-deps
	$(VPY) bench/run.py --bin-dir $(CURDIR)/target/release $(BENCH_ARGS)

bench-deps:
	@command -v rclone >/dev/null || { echo "installing Debian's rclone (the peer tool)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q rclone >/dev/null; }
	$(VPY) -m pip install --quiet blake3

lint: venv
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(VENV)/bin/ruff check sdk/python examples bench

fmt: venv
	$(CARGO) fmt --all
	$(VENV)/bin/ruff format sdk/python examples

clean:
	$(CARGO) clean
	rm -rf $(VENV)
