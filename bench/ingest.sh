#!/usr/bin/env bash
# Acknowledged ingest throughput and latency of the SQLite hub, measured with
# `shelfcast simulate` on loopback. Baseline: one device sending one event per request, which
# pays one fsync per event; every other row is a ratio against it, from the same run.
#   bash bench/ingest.sh [seconds per row, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
# SHELFCAST_BIN: measure that binary instead (an A/B against another build).
bin=${SHELFCAST_BIN:-target/release/shelfcast}
[ -n "${SHELFCAST_BIN:-}" ] || cargo build --release -p shelfcast-server >&2
data=$(mktemp -d)
trap 'kill $hub 2>/dev/null; rm -rf "$data"' EXIT
coproc HUB { SHELFCAST_LOG=warn exec "$bin" serve --listen 127.0.0.1:0 --data "$data" --device-token "bench=*"; }
hub=$HUB_PID
read -r line <&"${HUB[0]}"
url=${line#listening on }
echo "hub at $url, data in $data, ${secs}s per row" >&2

printf '| devices | events/request | events/s | p50 ms | p99 ms | vs 1×1 |\n|---:|---:|---:|---:|---:|---:|\n'
base=
for row in "1 1" "16 1" "256 1" "1 100" "16 100" "256 100"; do
  set -- $row
  out=$("$bin" simulate --target "$url" --token bench --rate 0 --duration "${secs}s" --concurrency "$1" --batch "$2" \
        --skus 1000 --locations s1,s2,s3,s4,s5,s6,s7,s8 2>/dev/null)
  eps=$(sed -E 's/.* ([0-9]+) events\/s acknowledged.*/\1/' <<<"$out")
  p50=$(sed -E 's/.*p50 ([0-9.]+) ms.*/\1/' <<<"$out")
  p99=$(sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' <<<"$out")
  base=${base:-$eps}
  printf '| %s | %s | %s | %s | %s | %.1f× |\n' "$1" "$2" "$eps" "$p50" "$p99" "$(echo "$eps / $base" | bc -l)"
done
