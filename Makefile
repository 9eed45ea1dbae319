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
# The scale-out test stage: PostgreSQL + S3 (s3s-fs) started by
# scripts/test-backends.sh into this directory and stopped afterwards.
BACKENDS_STATE := $(CURDIR)/target/test-backends
S3S_FS := target/tools/bin/s3s-fs

.PHONY: all build build-release venv wheel test test-rust test-python test-wheel test-e2e test-scaleout demo bench bench-software-path bench-search bench-web bench-deps soak lint fmt clean

all: build

## Debug build of every binary and test target, reused by all test stages.
build: $(S3S_FS)
	$(CARGO) build --workspace --all-targets --locked $(TEST_FEATURES)

## The S3-compatible test server, built once into the checkout (a few minutes).
$(S3S_FS):
	$(CARGO) install s3s-fs --version 0.14.1 --locked --features binary --root $(CURDIR)/target/tools

build-release:
	$(CARGO) build --release --bins --locked

## The developer venv (used by test, lint, demo, bench). It gets the SDK from source, NOT by
## building it: `pip install sdk/python` runs maturin, which compiles the `dataerai` binary in
## release mode (minutes on two cores) and bundles it, while the tests run the binaries
## `make build` compiled anyway (DATAERAI_BIN_DIR). So scripts/install-sdk-source.py installs the
## `dev` extra's requirements from sdk/python/pyproject.toml and puts sdk/python/src on sys.path
## with a .pth file (edits take effect at once, like an editable install). The wheel is built
## only by `make wheel`, once per commit.
$(VENV)/.installed: sdk/python/pyproject.toml scripts/install-sdk-source.py
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) scripts/install-sdk-source.py dev
	touch $@

venv: $(VENV)/.installed

## The wheel users install: dataerai-sdk with the `dataerai` binary (release) bundled, built by
## maturin into target/wheels/<commit>/ and reused while the sources are unchanged
## (scripts/wheel.sh). `pip install ./sdk/python` builds the same thing.
wheel: venv
	VPY=$(CURDIR)/$(VPY) scripts/wheel.sh build

## The whole suite: Rust unit + integration tests, then the Python SDK suite
## against real server and daemon processes built once above, then the wheel
## installed alone into a clean venv running the quick start, then the
## headless-browser sign-in test; then the store, server and daemon suites
## again (with their scale-out-only tests), and the SDK suite once, on
## PostgreSQL + S3.
test: build venv test-rust test-python test-wheel test-e2e test-scaleout

test-rust:
	$(CARGO) test --workspace --locked $(TEST_FEATURES)

test-python: venv
	DATAERAI_BIN_DIR=$(CURDIR)/target/debug $(VPY) -m pytest sdk/python/tests -q

## The wheel as a user gets it (built once, see `wheel`): installed with nothing else into a
## fresh venv at target/wheel-venv, with no `dataerai` on PATH, it runs examples/quickstart.py
## (as `make demo` does) against a real dataerai-server from target/debug; the SDK must start its
## own bundled binary as the daemon, and SDK and binary must carry one version.
test-wheel: build venv
	VPY=$(CURDIR)/$(VPY) DATAERAI_BIN_DIR=$(CURDIR)/target/debug scripts/wheel.sh quickstart

## Headless-browser end to end (tests/e2e): the CLI's device login approved
## in Debian's Chromium driven by playwright-core (node_modules stays in the
## checkout), personal access tokens, CSRF, sign-out. Installs chromium when
## it is missing.
E2E_DIR := tests/e2e
$(E2E_DIR)/node_modules/.installed: $(E2E_DIR)/package-lock.json
	cd $(E2E_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test-e2e: $(E2E_DIR)/node_modules/.installed
	@test -x /usr/bin/chromium || { echo "installing Debian's chromium (for the browser test)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; }
	cd $(E2E_DIR) && DATAERAI_BIN_DIR=$(CURDIR)/target/debug npm test --silent

## Start a throwaway PostgreSQL cluster and s3s-fs, run the store, server and
## daemon suites (DATAERAI_TEST_SERVER_ARGS points every test server at them),
## including the tests that only make sense there (`#[ignore]`d in test-rust:
## "needs PostgreSQL + S3"; DATAERAI_REQUIRE_SCALEOUT=1 fails them instead of
## skipping when a backend variable is missing), and the Python suite once
## against them (its servers and admin commands pick the backends up from
## DATAERAI_DATABASE_URL / DATAERAI_BLOB_STORE, and a test checks the bytes
## and rows really land there), and stop both whatever happens.
test-scaleout: venv $(S3S_FS)
	@set -e; \
	env="$$(scripts/test-backends.sh start $(BACKENDS_STATE))"; \
	trap 'scripts/test-backends.sh stop $(BACKENDS_STATE)' EXIT; \
	eval "$$env"; \
	export DATAERAI_REQUIRE_SCALEOUT=1; \
	echo "== store, server and daemon suites on PostgreSQL + S3"; \
	$(CARGO) test -p dataerai-store -p dataerai-server -p dataerai --locked $(TEST_FEATURES) \
	  -- --include-ignored; \
	echo "== Python SDK suite on PostgreSQL + S3"; \
	DATAERAI_DATABASE_URL="$$DATAERAI_TEST_PG_URL/sdk_suite" \
	DATAERAI_BLOB_STORE="s3://$$DATAERAI_TEST_BUCKET/sdk-suite" \
	DATAERAI_BIN_DIR=$(CURDIR)/target/debug $(VPY) -m pytest sdk/python/tests -q

## Build release binaries, start an embedded server on loopback, sign in and
## run the Python quick start end to end; cleans up after itself.
demo: build-release venv
	DATAERAI_BIN_DIR=$(CURDIR)/target/release VPY=$(CURDIR)/$(VPY) scripts/demo.sh

## Benchmark (not part of `make test`): writes bench-results/results.{json,md}, then the
## search benchmark below (bench-search).
## BENCH_ARGS: by default the embedded, the software-path (tmpfs) and the PostgreSQL + S3
## configuration; e.g. BENCH_ARGS="--configs software-path --rss-gib 0" for the tmpfs one alone.
BENCH_ARGS ?= --scaleout
bench: build-release venv bench-deps $(S3S_FS)
	$(VPY) bench/run.py --bin-dir $(CURDIR)/target/release $(BENCH_ARGS)
	$(MAKE) bench-search
	$(MAKE) bench-web

## The software path alone (not part of `make test`; a few minutes): 1 GiB up and down with the
## server's data, source and destination on tmpfs (BENCH_TMPFS, default /dev/shm), throughput and
## CPU seconds per GiB of daemon and server beside rclone; the same on the disk (download / upload
## ratio on one disk); each target with its verdict; then the daemon's peak RSS over 4 GiB
## in 64 MiB chunks (on the disk). Writes bench-results/results.{json,md}. More run.py flags in
## BENCH_SP_ARGS (e.g. "--rounds 5 --rss-gib 0").
BENCH_TMPFS ?= /dev/shm
bench-software-path: build-release venv bench-deps
	$(VPY) bench/run.py --bin-dir $(CURDIR)/target/release --configs software-path \
		--tmpfs $(BENCH_TMPFS) $(BENCH_SP_ARGS)

## Search speed on a generated catalogue (not part of `make test`): SEARCH_ASSETS assets
## (default 1,000,000; e.g. SEARCH_ASSETS=20000 for a quick check) with SEARCH_ASSETS/10
## relationships in depth-20 chains, on SQLite and on a throwaway PostgreSQL; prints Markdown
## tables for docs/performance.md (SEARCH_PLANS=1 adds every query's plans). The PostgreSQL
## gets SEARCH_PG_SHARED_BUFFERS of buffer cache (default 1GB), sized like a real deployment of
## a 1M catalogue: the search table and its indexes stay in PostgreSQL's own cache (docs/search.md).
SEARCH_ASSETS ?= 1000000
SEARCH_PG_SHARED_BUFFERS ?= 1GB
bench-search: $(S3S_FS)
	$(if $(SEARCH_PLANS),DATAERAI_BENCH_SQL=1) DATAERAI_BENCH_ASSETS=$(SEARCH_ASSETS) cargo test --release --locked -p dataerai-store \
		--features search-bench --lib search_speed_sqlite -- --nocapture --test-threads 1
	eval "$$(PG_SHARED_BUFFERS=$(SEARCH_PG_SHARED_BUFFERS) scripts/test-backends.sh start $(CURDIR)/target/bench-search-backends)" && \
		$(if $(SEARCH_PLANS),DATAERAI_BENCH_SQL=1) DATAERAI_BENCH_ASSETS=$(SEARCH_ASSETS) DATAERAI_REQUIRE_SCALEOUT=1 cargo test --release --locked \
		-p dataerai-store --features search-bench --lib search_speed_postgres -- --nocapture --test-threads 1; \
		rc=$$?; scripts/test-backends.sh stop $(CURDIR)/target/bench-search-backends; exit $$rc

## Web page speed (not part of `make test`): one project of WEB_ASSETS assets (default 100,000)
## loaded with the search benchmark's bulk loader, served by the release dataerai-server; a user
## signs in and every page (home, project pages and sorts, asset, search) is timed, p50/p99 over
## 25 requests each. Prints a Markdown table for docs/performance.md; fails over 100 ms (p50).
WEB_ASSETS ?= 100000
bench-web:
	$(CARGO) build --release --locked -p dataerai-server
	DATAERAI_BENCH_WEB_ASSETS=$(WEB_ASSETS) $(CARGO) test --release --locked -p dataerai-store \
		--features search-bench --lib web_speed -- --nocapture --test-threads 1

bench-deps:
	@command -v rclone >/dev/null || { echo "installing Debian's rclone (the peer tool)"; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get install -y -q rclone >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q rclone >/dev/null; }; }
	$(VPY) -m pip install --quiet blake3

## Soak test (not part of `make test`; docs/reliability.md): SOAK_S seconds (default 600) per
## backend of 50 concurrent uploads and ~200 metadata calls/s through SDK -> daemon -> server
## while the server, the daemon (and on PostgreSQL + S3 the database) are killed and restarted;
## then every acknowledged upload must download byte-identical and nothing may be left reserved.
## SOAK_BACKEND=embedded|scaleout|both (default both). Writes its report into docs/reliability.md
## and fails when a check fails. DATAERAI_BIN_DIR=<dir> uses binaries built elsewhere instead of
## building the release ones.
SOAK_BIN_DIR = $(or $(DATAERAI_BIN_DIR),$(CURDIR)/target/release)
soak: $(if $(DATAERAI_BIN_DIR),,build-release) venv $(if $(filter embedded,$(SOAK_BACKEND)),,$(S3S_FS))
	$(VPY) bench/soak.py --bin-dir $(SOAK_BIN_DIR)

## Rust: rustfmt and clippy (with the test features, so the fault-injection
## code is linted too and cargo reuses the test build's dependencies); Python:
## ruff, and mypy --strict on the SDK package (settings in
## sdk/python/pyproject.toml, [tool.mypy]); then that the wheel (built once,
## see `wheel`) ships py.typed and mypy --strict accepts a user script that
## imports the installed package.
lint: venv
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked $(TEST_FEATURES) -- -D warnings
	$(VENV)/bin/ruff check sdk/python examples bench
	$(VENV)/bin/mypy --strict --config-file sdk/python/pyproject.toml sdk/python/src/dataerai
	VPY=$(CURDIR)/$(VPY) scripts/wheel.sh typed

fmt: venv
	$(CARGO) fmt --all
	$(VENV)/bin/ruff format sdk/python examples

clean:
	$(CARGO) clean
	rm -rf $(VENV)
