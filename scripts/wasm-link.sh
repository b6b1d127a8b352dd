#!/usr/bin/env bash
# The element's linker: rust-lld, without the exports of wasm-streams' stream classes.
#
# Leptos always builds `server_fn` with its "browser" feature, which brings wasm-streams and
# its `#[wasm_bindgen]` classes (IntoUnderlyingSource, IntoUnderlyingByteSource,
# IntoUnderlyingSink). The element calls no server function and never creates one of those
# streams (the wasm imports no constructor for them), but an exported method is kept however
# unreachable: about 20 KB of wasm and 5 KB of JS glue for nothing. Not exporting them lets the
# linker drop that code; wasm-bindgen then leaves only empty class shells behind.
set -euo pipefail
host=$(rustc -vV | sed -n 's/^host: //p')
lld="$(rustc --print sysroot)/lib/rustlib/$host/bin/rust-lld"
# rustc calls the linker as `<linker> -flavor wasm <args>`; each export is `--export <name>`.
[ "${1:-}" = "-flavor" ] && shift 2
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--export" ] && [ $# -gt 1 ]; then
    case "$2" in
      *intounderlying*) ;;
      *) args+=("$1" "$2") ;;
    esac
    shift 2
  else
    args+=("$1")
    shift
  fi
done
exec "$lld" -flavor wasm "${args[@]}"
