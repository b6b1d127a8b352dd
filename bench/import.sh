#!/usr/bin/env bash
# Stock files in and out: `shelfcast import` of an N-line CSV of counts (N/50 SKUs at 50 stores)
# into a hub on SQLite, the same file again (every line a duplicate), and `shelfcast export`,
# next to a baseline in the same run: the same number of events sent by `shelfcast simulate`
# as fast as the hub acknowledges them, in requests of the same size.
#   bash bench/import.sh [N]                                  (default: 1000000)
#   SHELFCAST_BIN=path/to/shelfcast bash bench/import.sh N     (measure another build)
# Checked on every run (the script fails otherwise): the import applies N and rejects none,
# the second run applies none and finds N duplicates, and the export holds exactly the
# file's counts. Times are printed, never checked.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${1:-1000000}
bin=${SHELFCAST_BIN:-target/release/shelfcast}
[ -n "${SHELFCAST_BIN:-}" ] || cargo build --release -p shelfcast-server >&2
work=$(mktemp -d)
pid=
cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# start: a hub on a fresh SQLite ledger; sets pid and url.
start() {
  local port
  port=$(free_port)
  rm -rf "$work/data"
  SHELFCAST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data "$work/data" --device-token "bench=*" >"$work/out" 2>"$work/err" &
  pid=$!
  url="http://127.0.0.1:$port"
  ready "$url" "$pid" "$work/err"
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
now() { date +%s.%N; }
secs() { python3 -c "print('%.2f' % ($2 - $1))"; }

skus=$(((n + 49) / 50))
awk -v n="$n" 'BEGIN { print "sku,location,qty"; for (i = 0; i < n; i++) printf "SKU-%07d,store-%02d,%d\n", int(i / 50), i % 50, (i * 7) % 100 + 1 }' >"$work/stock.csv"
echo "file: $n lines ($skus SKUs at 50 stores), $(du -h "$work/stock.csv" | cut -f1)" >&2

start
t0=$(now)
SHELFCAST_LOG=warn "$bin" import --target "$url" --token bench "$work/stock.csv" >"$work/first" 2>"$work/first.err" || { cat "$work/first" "$work/first.err" >&2; exit 1; }
import_s=$(secs "$t0" "$(now)")
grep -q " $n lines, $n applied, 0 duplicates, 0 rejected" "$work/first" || { echo "first import: $(tail -1 "$work/first")" >&2; exit 1; }

t0=$(now)
SHELFCAST_LOG=warn "$bin" import --target "$url" --token bench "$work/stock.csv" >"$work/again" 2>/dev/null
again_s=$(secs "$t0" "$(now)")
grep -q " $n lines, 0 applied, $n duplicates, 0 rejected" "$work/again" || { echo "second import: $(tail -1 "$work/again")" >&2; exit 1; }

t0=$(now)
SHELFCAST_LOG=warn "$bin" export --target "$url" --token bench -o "$work/export.csv" 2>/dev/null
export_s=$(secs "$t0" "$(now)")
# The export's (sku, location, on_hand) are exactly the file's lines.
diff <(tail -n +2 "$work/stock.csv" | sort) <(tail -n +2 "$work/export.csv" | cut -d, -f1-3 | sort) >/dev/null ||
  { echo "the export does not hold the file's counts" >&2; exit 1; }
stop

# Baseline: the hub alone, the same number of events, 4 devices of 5,000-event requests.
start
base=$(SHELFCAST_LOG=warn "$bin" simulate --target "$url" --token bench --rate 0 --duration 600s --events "$n" \
  --batch 5000 --concurrency 4 --skus "$skus" --locations "$(seq -s, -f 'store-%02g' 0 49)" 2>/dev/null | tail -1)
stop
base_rate=$(field ' ([0-9]+) events/s acknowledged' "$base")

rate() { python3 -c "print('%.0f' % ($n / $1))"; }
echo
echo "| step | seconds | lines/s | vs the hub's own ingest |"
echo "|---|---:|---:|---:|"
echo "| import, $n lines | $import_s | $(rate "$import_s") | $(ratio "$(rate "$import_s")" "$base_rate")x |"
echo "| the same file again (all duplicates) | $again_s | $(rate "$again_s") | $(ratio "$(rate "$again_s")" "$base_rate")x |"
echo "| export, $n positions | $export_s | $(rate "$export_s") | |"
echo "| baseline: simulate, $n events in 5,000-event requests | | $base_rate | 1.00x |"
