#!/usr/bin/env bash
# Fuzzes what Shelfcast reads from the network (ingest bodies, query strings, Last-Event-ID)
# and its inventory rules, each target for SECONDS (default 30), starting from fuzz/seeds/.
# A crash stops the run and leaves its input in fuzz/artifacts/<target>/.
#   bash scripts/fuzz.sh [SECONDS] [TARGET…]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-30}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(event_decode selection last_event_id rules)
# libFuzzer instrumentation needs unstable compiler flags; the stable toolchain allows them here.
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build -O
for t in "${targets[@]}"; do
  corpus="$(mktemp -d)"
  log="$(mktemp)"
  printf '\033[1m==> fuzzing %s for %ss\033[0m\n' "$t" "$seconds" >&2
  if ! cargo fuzz run -O "$t" "$corpus" "seeds/$t" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $t found a failure: its input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
  rm -rf "$corpus" "$log"
done
