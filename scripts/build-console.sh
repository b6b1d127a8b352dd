#!/usr/bin/env bash
# Builds the console's WebAssembly and scripts into console/dist, where the hub's build takes
# them from (server/build.rs embeds them; `/console/` serves them). Optimised for size like
# the element: its download is measured against a budget in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO_TARGET_DIR=target/console \
  cargo build -p shelfcast-console --target wasm32-unknown-unknown --profile wasm
mkdir -p console/dist/glue
wasm-bindgen --target web --remove-name-section --remove-producers-section \
  --out-dir console/dist/glue --out-name shelfcast_console \
  target/console/wasm32-unknown-unknown/wasm/shelfcast_console.wasm
tools=scripts/minify/node_modules/.bin
if [ ! -x "$tools/esbuild" ] || [ ! -x "$tools/wasm-opt" ]; then
  (cd scripts/minify && npm ci --no-audit --no-fund --loglevel=error)
fi
"$tools/wasm-opt" -Oz --strip-target-features \
  --enable-bulk-memory --enable-reference-types --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-multivalue \
  console/dist/glue/shelfcast_console_bg.wasm -o console/dist/console_bg.wasm
"$tools/esbuild" --log-level=warning --minify --format=esm --bundle console/main.js --outfile=console/dist/console.js
cp console/index.html console/dist/index.html
"$tools/esbuild" --log-level=warning --minify console/console.css --outfile=console/dist/console.css
for f in console/dist/index.html console/dist/console.css console/dist/console.js console/dist/console_bg.wasm; do
  printf '%-36s %8d B raw %8d B gzip\n' "$f" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)" >&2
done
