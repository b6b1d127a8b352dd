#!/usr/bin/env bash
# Runs every Shelfcast test: the shared rules, the hub over real HTTP and SQLite, the element
# in headless Chromium, and the end-to-end and npm-consumer tests against a real hub, and
# fuzzes what the hub reads from the network for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# A clean clone needs no incremental caches: they would double what the builds leave on disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
say "disk: $(df -h . | awk 'NR==2 {print $4 " free of " $2}')"

bash scripts/setup.sh --tests

say "building the element and the console (wasm)"
bash scripts/build-element.sh
bash scripts/build-console.sh

say "formatting (rustfmt.toml) and lints (clippy, warnings are errors), native and wasm"
cargo fmt --all --check
cargo clippy --workspace --all-targets --exclude shelfcast-element --exclude shelfcast-console -- -D warnings
cargo clippy -p shelfcast-element --target wasm32-unknown-unknown --all-targets --features testing -- -D warnings
cargo clippy -p shelfcast-console --target wasm32-unknown-unknown --all-targets -- -D warnings

say "PostgreSQL and NATS"
bash scripts/services.sh
pg="postgres://shelfcast:shelfcast@127.0.0.1:5432"

say "shared rules, hub and edge on SQLite (native), three replicas on PostgreSQL and NATS"
SHELFCAST_REPLICAS_POSTGRES="$pg" cargo test --workspace --exclude shelfcast-element --exclude shelfcast-console

say "the hub contract tests again, on PostgreSQL"
SHELFCAST_TEST_POSTGRES="$pg" cargo test -p shelfcast-server \
  --test ingest --test streams --test reservations --test malformed --test operations --test access --test overload --test differential --test history --test transfer --test directory --test disclosure --test webhooks

say "the scale-out benchmark harness runs (2 s a row; no figure is checked)"
bash bench/scaleout.sh 2

say "the replica-capacity benchmark runs (each replica held to 0.1 of a core, 2 s a row; no figure is checked)"
SHELFCAST_BIN=target/release/shelfcast bash bench/capacity.sh 2 0.1

say "the cost benchmark runs (CPU per hold and per event by process, 2 s a row; no figure is checked)"
SHELFCAST_BIN=target/release/shelfcast bash bench/cost.sh 2

say "the catalogue benchmark runs (100,000 positions; a start on them, and after kill -9, reads back what the ledger holds)"
SHELFCAST_BIN=target/release/shelfcast bash bench/catalogue.sh 100000

say "stock files: 1,000,000 lines imported, again (all duplicates), exported and compared with the file"
SHELFCAST_BIN=target/release/shelfcast bash bench/import.sh 1000000

say "the webhooks benchmark runs (1 s, one round; deliveries must reach the receiver)"
SHELFCAST_BIN=target/release/shelfcast bash bench/webhooks.sh 1 1

say "the fan-out benchmark over TLS runs (200 subscribers, 2 s a row; no figure is checked)"
SHELFCAST_BIN=target/release/shelfcast bash bench/fanout-tls.sh 200 2

say "the peer benchmarks run: JetStream, pgbench, Pushpin (--quick; only the oversell check is asserted)"
bash bench/peers.sh --quick

say "Kubernetes manifests against the Kubernetes API schemas"
bash scripts/validate-manifests.sh

say "the container image the manifests name: built (static musl binary, FROM scratch), a hub and an edge container started"
bash scripts/image-smoke.sh

say "the running hub against its OpenAPI document (Schemathesis)"
bash scripts/api-conformance.sh 100

say "fuzzing the parsers of untrusted input and the inventory rules (30 s a target)"
bash scripts/fuzz.sh "${SHELFCAST_FUZZ_SECONDS:-30}"

say "the shared crate compiles to wasm32 too"
cargo check -p shelfcast-protocol --target wasm32-unknown-unknown

say "element components in headless Chromium"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p shelfcast-element --target wasm32-unknown-unknown --features testing
cargo test -p shelfcast-console --lib

say "end to end: hub + element in Chromium, npm package in a Vite app"
cargo build --release -p shelfcast-server
(cd e2e && npm ci --no-audit --no-fund && (cd vite-app && npm ci --no-audit --no-fund) && npm test)
