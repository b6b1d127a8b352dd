#!/usr/bin/env bash
# Runs the Shelfcast demo: the hub on embedded SQLite, simulated tills and the demo product
# page, on http://127.0.0.1:8080/ (set SHELFCAST_LISTEN to change it). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-element.sh
bash scripts/build-console.sh
cargo build --release -p shelfcast-server
echo "Open http://${SHELFCAST_LISTEN:-127.0.0.1:8080}/ in a browser." >&2
exec target/release/shelfcast serve --demo --data "${SHELFCAST_DATA:-./shelfcast-data}" "$@"
