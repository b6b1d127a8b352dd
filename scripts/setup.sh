#!/usr/bin/env bash
# Installs everything Shelfcast's demo needs on a fresh Debian machine with Rust, and with
# `--tests` what the test suite needs too, skipping whatever is already there. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# The wasm target for the element.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32 target"
  rustup target add wasm32-unknown-unknown
fi
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library" ]; then
  say "adding the standard library's source (the element's wasm rebuilds it for size)"
  rustup component add rust-src
fi

# wasm-bindgen-cli must match the wasm-bindgen version in Cargo.lock exactly.
want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  say "installing wasm-bindgen-cli $want (about 2 minutes)"
  cargo install wasm-bindgen-cli --version "$want"
fi

# Debian packages: a headless browser for the element's tests.
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
# Certificates for the HTTPS tests and the TLS benchmark.
command -v openssl >/dev/null || need+=(openssl)
# The SQLite shell: the catalogue benchmark writes its large ledgers with it.
command -v sqlite3 >/dev/null || need+=(sqlite3)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ "${1:-}" = "--tests" ]; then
  # The fuzzer driver (libFuzzer comes with it).
  if ! command -v cargo-fuzz >/dev/null; then
    say "installing cargo-fuzz (about 2 minutes)"
    cargo install cargo-fuzz --locked --version 0.13.2
  fi
  # The schema-driven API tester, checking the hub against its OpenAPI document.
  if ! command -v st >/dev/null; then
    say "installing schemathesis"
    pip install --quiet "schemathesis==4.32.5"
  fi
  # The Standard Webhooks package, which the tests verify webhook signatures with.
  if ! python3 -c "import standardwebhooks" 2>/dev/null; then
    say "installing standardwebhooks"
    pip install --quiet "standardwebhooks==1.3.0"
  fi
  # The Kubernetes schema validator for deploy/kubernetes/.
  if ! command -v kubernetes-validate >/dev/null; then
    say "installing kubernetes-validate"
    pip install --quiet "kubernetes-validate==1.37.0"
  fi
fi
say "setup complete"
