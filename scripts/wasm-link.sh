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
args=()
prev=
for a in "$@"; do
  if [ "$prev" = "--export" ]; then
    prev=
    case "$a" in
      *intounderlying*) unset 'args[${#args[@]}-1]'; continue ;;
    esac
  fi
  case "$a" in -flavor | wasm) continue ;; esac
  args+=("$a")
  prev=$a
done
exec "$lld" -flavor wasm "${args[@]}"
