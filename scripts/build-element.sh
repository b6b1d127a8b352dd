#!/usr/bin/env bash
# Builds the element's WebAssembly into pkg/dist, where the npm package and the hub's
# /embed/ routes take it from. Run scripts/setup.sh once before.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p shelfcast-element --target wasm32-unknown-unknown --profile wasm
mkdir -p pkg/dist
wasm-bindgen --target web --remove-name-section --remove-producers-section \
  --out-dir pkg/dist --out-name shelfcast_element \
  target/wasm32-unknown-unknown/wasm/shelfcast_element.wasm
rm -f pkg/dist/*.d.ts
for f in pkg/dist/shelfcast_element_bg.wasm pkg/dist/shelfcast_element.js pkg/index.js; do
  printf '%-40s %8d B raw %8d B gzip\n' "$f" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)" >&2
done
