#!/usr/bin/env bash
# Builds the element's WebAssembly into pkg/dist, where the npm package and the hub's
# /embed/ routes take it from. Run scripts/setup.sh once before.
set -euo pipefail
cd "$(dirname "$0")/.."
# The standard library is rebuilt with the element, optimised for size, with panics that trap
# at once (no message formatting, no file/line strings) and `{:?}` compiled to nothing: together
# about 20 KB less to download. These are unstable compiler switches, hence RUSTC_BOOTSTRAP,
# set for this one build only. The element never shows Debug output or relies on unwinding.
# It links through scripts/wasm-link.sh, which leaves out the unused stream classes of a
# Leptos dependency (see there).
RUSTC_BOOTSTRAP=1 \
RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none -Clinker=$PWD/scripts/wasm-link.sh" \
CARGO_TARGET_DIR=target/element \
  cargo build -p shelfcast-element --target wasm32-unknown-unknown --profile wasm \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
mkdir -p pkg/dist
wasm-bindgen --target web --remove-name-section --remove-producers-section \
  --out-dir pkg/dist --out-name shelfcast_element \
  target/element/wasm32-unknown-unknown/wasm/shelfcast_element.wasm
rm -f pkg/dist/*.d.ts
# Minified JavaScript: the generated glue in place (for the npm package and the hub alike), and
# the three loaders as the hub serves them under /embed/ (pkg/dist/embed/; the npm package
# ships their readable sources, which a shop's bundler minifies itself). esbuild only
# transforms here, never bundles: every import stays as written.
if [ ! -x scripts/minify/node_modules/.bin/esbuild ]; then
  (cd scripts/minify && npm ci --no-audit --no-fund --loglevel=error)
fi
esbuild=scripts/minify/node_modules/.bin/esbuild
"$esbuild" --log-level=warning --minify --format=esm --allow-overwrite \
  pkg/dist/shelfcast_element.js --outfile=pkg/dist/shelfcast_element.js
mkdir -p pkg/dist/embed
"$esbuild" --log-level=warning --minify --format=esm pkg/embed.js --outfile=pkg/dist/embed/shelfcast.js
"$esbuild" --log-level=warning --minify --format=esm pkg/index.js --outfile=pkg/dist/embed/index.js
"$esbuild" --log-level=warning --minify --format=esm pkg/element.js --outfile=pkg/dist/embed/element.js
for f in pkg/dist/shelfcast_element_bg.wasm pkg/dist/shelfcast_element.js pkg/dist/embed/*.js; do
  printf '%-40s %8d B raw %8d B gzip\n' "$f" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)" >&2
done
