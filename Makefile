# tickstream — common tasks. `make` (or `make help`) lists them.
# Cargo honours CARGO_TARGET_DIR from the environment; the default is ./target.

CARGO   ?= cargo
COMPOSE ?= docker compose

.DEFAULT_GOAL := help
.PHONY: help build release run test fmt lint up down clean bench fuzz

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Debug build of every binary
	$(CARGO) build --workspace --bins

release: ## Optimized build into target/release/ (or $CARGO_TARGET_DIR/release/)
	$(CARGO) build --release --bins

run: ## Build and run redis + ingest-sim + analytics + gateway on :5021 (Ctrl-C stops)
	scripts/run.sh

test: ## What CI runs: deps, format check, clippy, build, tests
	scripts/ensure-deps.sh
	scripts/ensure-sio-clients.sh
	scripts/ensure-js-clients.sh
	scripts/ensure-analytics-ref.sh
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

bench: ## Benchmarks: gateway vs the naive Rust fan-out baseline and the Node socket.io reference, analytics throughput, one Redis vs a 3-master cluster; BENCH_QUICK=1 for a short smoke (results in bench/results/)
	scripts/bench.sh
	scripts/bench-analytics.sh
	scripts/bench-scaleout.sh

fuzz: ## Fuzz every parser for FUZZ_SECONDS (default 60) each; works on stable (scripts/fuzz.sh)
	scripts/fuzz.sh

fmt: ## Format the code
	$(CARGO) fmt --all

lint: ## Clippy with warnings as errors
	$(CARGO) clippy --workspace --all-targets -- -D warnings

up: ## docker compose: build and start the stack in the background
	$(COMPOSE) up --build -d

down: ## docker compose: stop the stack
	$(COMPOSE) down

clean: ## Remove build output and .run/
	$(CARGO) clean
	rm -rf .run
