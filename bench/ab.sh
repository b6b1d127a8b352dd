#!/usr/bin/env bash
# A/B of two builds of the hub on the rows a change of the writer can move, in one run,
# interleaved (A, B, A, B … so that a slow spell of the machine hits both): ingest (BENCHMARKS.md
# row 1: 16 clients x 100 events a request, and 16 x 1), contended reservations (row 2: 48
# clients, 10 hot positions) and an edge drain (row 5, with N events). Prints each measurement
# and the median ratio B/A per row.
#   bash bench/ab.sh OLD_BINARY NEW_BINARY [seconds per measurement, default 5] [rounds, default 3] [edge events, default 200000]
#   ROWS=drain bash bench/ab.sh …   (some of the rows: ingest-16x100 ingest-16x1 holds-48x10 drain)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
a=$1 b=$2 secs=${3:-5} rounds=${4:-3} drain=${5:-200000}
work=$(mktemp -d)
hub_pid=
cleanup() {
  [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# start BIN: a fresh SQLite hub of BIN, its URL in $url.
start() {
  rm -rf "$work/data"
  SHELFCAST_LOG=warn "$1" serve --listen 127.0.0.1:0 --data "$work/data" --device-token "bench=*" \
    --reservation-rate 0 --stream-rate 0 >"$work/out" 2>"$work/err" &
  hub_pid=$!
  url=$(listening "$work/out")
}
stop() { kill "$hub_pid"; wait "$hub_pid" 2>/dev/null || true; hub_pid=; }
# The same load generator (B's) for both.
sim() { "$b" simulate --rate 0 --duration "${secs}s" --target "$url" --token bench "$@" 2>/dev/null; }

# measure ROW BIN: one figure of ROW with BIN.
measure() {
  case $1 in
  ingest-16x100 | ingest-16x1)
    start "$2"
    local batch=${1##*x}
    field ' ([0-9]+) events/s acknowledged.*' "$(sim --concurrency 16 --batch "$batch" --skus 1000 --locations s1,s2,s3,s4,s5,s6,s7,s8)"
    stop
    ;;
  holds-48x10)
    start "$2"
    seed_hot "$url" 10 count
    field ' ([0-9]+) reservations/s decided.*' "$(sim --reserve --concurrency 48 --skus 10 --locations s1)"
    stop
    ;;
  drain)
    # events/s drained: the fourth column of the script's table row
    SHELFCAST_BIN=$2 bash bench/edge-drain.sh "$drain" 2>/dev/null | awk -F'|' 'NR == 3 { gsub(/ /, "", $5); print $5 }'

    ;;
  esac
}

# ROWS: a subset, e.g. ROWS=drain.
read -r -a rows <<<"${ROWS:-ingest-16x100 ingest-16x1 holds-48x10 drain}"
say "A: $a"
say "B: $b"
say "$rounds rounds of ${secs}s a measurement, A then B each time"
printf '| row | A (each round) | B (each round) | B/A (median) |\n|---|---|---|---:|\n'
for row in "${rows[@]}"; do
  as=() bs=()
  for r in $(seq "$rounds"); do
    as+=("$(measure "$row" "$a")")
    bs+=("$(measure "$row" "$b")")
    say "$row round $r: A ${as[-1]}, B ${bs[-1]}"
  done
  median=$(python3 -c "import statistics,sys; a=[float(x) for x in sys.argv[1].split()]; b=[float(x) for x in sys.argv[2].split()]; print('%.2f' % statistics.median(y / x for x, y in zip(a, b)))" "${as[*]}" "${bs[*]}")
  printf '| %s | %s | %s | %s |\n' "$row" "${as[*]}" "${bs[*]}" "$median"
done
