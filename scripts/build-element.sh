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
# The tools below are pinned in scripts/minify/ and installed from npm on first use.
tools=scripts/minify/node_modules/.bin
if [ ! -x "$tools/esbuild" ] || [ ! -x "$tools/wasm-opt" ]; then
  (cd scripts/minify && npm ci --no-audit --no-fund --loglevel=error)
fi
# Binaryen's wasm-opt: optimised again for size, and every import and export renamed to a
# name of a letter or two (wasm-bindgen's carry a hash each, and are spelled out twice, in
# the wasm and in its glue). The glue is renamed to match from the map wasm-opt prints, and
# checked: a name the map misses stops the build. The features are the ones rustc's wasm32
# target enables; anything more and wasm-opt may emit instructions a browser lacks.
wasm=pkg/dist/shelfcast_element_bg.wasm
"$tools/wasm-opt" -Oz --strip-target-features --minify-imports-and-exports-and-modules \
  --enable-bulk-memory --enable-reference-types --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-multivalue \
  "$wasm" -o "$wasm.small" >target/element/wasm-names.json
mv "$wasm.small" "$wasm"
node scripts/minify/wasm-names.mjs target/element/wasm-names.json "$wasm" pkg/dist/shelfcast_element.js
# Minified JavaScript: the generated glue in place (for the npm package), the two loaders the
# hub serves beside it, and the script-tag entry as one file: embed.js with the loaders and
# the glue bundled in, so a page downloads one script and the wasm. (The npm package ships
# the loaders' readable sources, which a shop's bundler minifies itself.)
"$tools/esbuild" --log-level=warning --minify --format=esm --allow-overwrite \
  pkg/dist/shelfcast_element.js --outfile=pkg/dist/shelfcast_element.js
mkdir -p pkg/dist/embed
"$tools/esbuild" --log-level=warning --minify --format=esm --bundle pkg/embed.js --outfile=pkg/dist/embed/shelfcast.js
"$tools/esbuild" --log-level=warning --minify --format=esm pkg/index.js --outfile=pkg/dist/embed/index.js
"$tools/esbuild" --log-level=warning --minify --format=esm pkg/element.js --outfile=pkg/dist/embed/element.js
"$tools/esbuild" --log-level=warning --minify --format=esm pkg/stores.js --outfile=pkg/dist/embed/stores.js
for f in pkg/dist/shelfcast_element_bg.wasm pkg/dist/shelfcast_element.js pkg/dist/embed/*.js; do
  printf '%-40s %8d B raw %8d B gzip\n' "$f" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)" >&2
done
