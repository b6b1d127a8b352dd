#!/usr/bin/env bash
# Shelfcast against the systems a retailer would otherwise use, side by side on this machine,
# each pair measured in this one run on loopback. Prints a table of absolute figures and ratios.
#   bash bench/peers.sh            10 s a measurement (about 6 minutes)
#   bash bench/peers.sh --quick    2 s a measurement (under 2 minutes; CI checks the harness runs)
# Rows:
#   1. durable idempotent ingest: the SQLite hub vs NATS JetStream (file storage, Nats-Msg-Id
#      dedupe, acks awaited), 1/16/256 clients x 1/100 events a request, same load generator;
#   2. contended reservations: the SQLite hub vs pgbench's conditional UPDATE on PostgreSQL 15,
#      same clients and hot positions, then a last-units round on both: 0 oversell checked;
#   3. fan-out: SSE subscribers of the hub vs Pushpin, one change every 10 ms (bench/fanout.sh).
# The load generators are `shelfcast simulate` (Rust, tokio + reqwest / async-nats); each says
# how much CPU it used, since it shares the machine's 2 cores with what it measures.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=10
fanout_subscribers=10000
if [ "${1:-}" = "--quick" ]; then secs=2; fanout_subscribers=1000; fi
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

bash scripts/services.sh >&2
# SHELFCAST_BIN: measure that binary instead (an A/B against another build).
bin=${SHELFCAST_BIN:-target/release/shelfcast}
[ -n "${SHELFCAST_BIN:-}" ] || cargo build --release -p shelfcast-server >&2
work=$(mktemp -d)
pids=()
db=shelfcast_peers_$$
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PGPASSWORD=shelfcast dropdb -h 127.0.0.1 -U shelfcast --if-exists "$db" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
. bench/lib.sh
hub() { # hub NAME: starts a SQLite hub with its data in $work/NAME; its URL in $url
  SHELFCAST_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data "$work/$1" --device-token "bench=*" \
    --reservation-rate 0 --stream-rate 0 >"$work/$1.out" 2>"$work/$1.err" &
  pids+=($!)
  url=$(listening "$work/$1.out")
}
sim() { "$bin" simulate --rate 0 --duration "${secs}s" "$@" 2>"$work/sim.err"; }
tills=(--skus 1000 --locations s1,s2,s3,s4,s5,s6,s7,s8)

say "row 1: durable idempotent ingest, the SQLite hub vs NATS JetStream ($(nats-server --version)), ${secs}s each"
nport=$(free_port)
nats-server -js -sd "$work/jetstream" -a 127.0.0.1 -p "$nport" >"$work/nats.log" 2>&1 &
pids+=($!)
hub ingest
for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$nport") 2>/dev/null && break; sleep 0.1; done
ingest_rows=()
for row in "1 1" "16 1" "256 1" "1 100" "16 100" "256 100"; do
  set -- $row
  sc=$(sim --target "$url" --token bench --concurrency "$1" --batch "$2" "${tills[@]}")
  sc_cpu=$(field 'load generator CPU: ([0-9]+)%.*' "$(cat "$work/sim.err")")
  js=$(sim --jetstream --target "nats://127.0.0.1:$nport" --token unused --concurrency "$1" --batch "$2" "${tills[@]}")
  js_cpu=$(field 'load generator CPU: ([0-9]+)%.*' "$(cat "$work/sim.err")")
  sc_eps=$(field ' ([0-9]+) events/s acknowledged.*' "$sc")
  js_eps=$(field ' ([0-9]+) events/s acknowledged.*' "$js")
  ingest_rows+=("$(printf '| %s × %s | %s | %s / %s | %s%% | %s | %s / %s | %s%% | %s× |' "$1" "$2" \
    "$sc_eps" "$(field 'p50 ([0-9.]+) ms.*' "$sc")" "$(field 'p99 ([0-9.]+) ms.*' "$sc")" "$sc_cpu" \
    "$js_eps" "$(field 'p50 ([0-9.]+) ms.*' "$js")" "$(field 'p99 ([0-9.]+) ms.*' "$js")" "$js_cpu" \
    "$(ratio "$sc_eps" "$js_eps")")")
  echo "  ${ingest_rows[-1]}" >&2
done

say "row 2: contended reservations, the SQLite hub vs pgbench on PostgreSQL 15, ${secs}s each"
clients=48
hot=10
PGPASSWORD=shelfcast createdb -h 127.0.0.1 -U shelfcast "$db"
psql_() { PGPASSWORD=shelfcast psql -qtAX -h 127.0.0.1 -U shelfcast -d "$db" -c "$1"; }
pgbench_() { PGPASSWORD=shelfcast pgbench -n -h 127.0.0.1 -U shelfcast -c "$clients" -j 2 -f "$work/reserve.sql" "$@" "$db" 2>/dev/null; }
printf '\\set id random(1, %d)\nUPDATE bench_stock SET reserved = reserved + 1 WHERE id = :id AND on_hand - reserved >= 1;\n' "$hot" >"$work/reserve.sql"
seed() { # seed URL UNITS: gives each hot position UNITS on hand at s1
  python3 -c "import json,sys; print(json.dumps([{'id':'seed-%s-%d'%(sys.argv[1],i),'type':'count','sku':'SKU-%05d'%i,'location':'s1','qty':int(sys.argv[1])} for i in range($hot)]))" "$2" |
    curl -sf -X POST "$1/v1/events" -H 'authorization: Bearer bench' -H 'content-type: application/json' --data-binary @- >/dev/null
}
reserved_at_hub() { # the sum of reserved and the lowest available over the hot positions
  local q
  q=$(python3 -c "print(','.join('SKU-%05d@s1' % i for i in range($hot)))")
  curl -sf "$1/v1/availability?positions=$q" |
    python3 -c 'import json,sys; p=json.load(sys.stdin)["positions"]; print(sum(x["reserved"] for x in p), min(x["available"] for x in p))'
}
# Stock that never runs out: every request is a granted hold, on both sides.
psql_ "CREATE TABLE bench_stock (id INT PRIMARY KEY, on_hand BIGINT NOT NULL, reserved BIGINT NOT NULL);
       INSERT INTO bench_stock SELECT g, 1000000000, 0 FROM generate_series(1, $hot) g;"
pg_tps=$(pgbench_ -T "$secs" | sed -nE 's/^tps = ([0-9.]+).*/\1/p')
hub reserve
seed "$url" 1000000000
sc=$(sim --reserve --target "$url" --token bench --concurrency "$clients" --skus "$hot" --locations s1)
sc_cpu=$(field 'load generator CPU: ([0-9]+)%.*' "$(cat "$work/sim.err")")
sc_rps=$(field ' ([0-9]+) reservations/s decided.*' "$sc")
granted=$(field ' ([0-9]+) granted.*' "$sc")
read -r held lowest < <(reserved_at_hub "$url")
[ "$held" = "$granted" ] || { echo "hub: $granted holds granted but $held reserved" >&2; exit 1; }
# The last units: 20 per position, far more shoppers than units; exactly 20 x $hot holds each side.
psql_ "UPDATE bench_stock SET on_hand = 20, reserved = 0;"
pgbench_ -t 100 >/dev/null
pg_held=$(psql_ "SELECT sum(reserved) FROM bench_stock")
pg_over=$(psql_ "SELECT count(*) FROM bench_stock WHERE reserved > on_hand")
hub lastunits
seed "$url" 20
"$bin" simulate --reserve --target "$url" --token bench --rate 0 --duration 30s --events $((clients * 100)) \
  --concurrency "$clients" --skus "$hot" --locations s1 >/dev/null 2>&1
read -r sc_held sc_lowest < <(reserved_at_hub "$url")
echo "  last units: hub $sc_held held (lowest available $sc_lowest), pgbench $pg_held held ($pg_over rows over)" >&2
[ "$sc_held" = $((20 * hot)) ] && [ "$sc_lowest" = 0 ] && [ "$pg_held" = $((20 * hot)) ] && [ "$pg_over" = 0 ] ||
  { echo "oversell check failed" >&2; exit 1; }
reserve_row=$(printf '| %d clients, %d hot positions | %s | %s%% | %s | %s× | 0 / 0 (%d of %d units held each) |' \
  "$clients" "$hot" "$sc_rps" "$sc_cpu" "$pg_tps" "$(ratio "$sc_rps" "$pg_tps")" $((20 * hot)) $((20 * hot)))
echo "  $reserve_row" >&2

say "row 3: fan-out to $fanout_subscribers SSE subscribers, the hub vs Pushpin"
fanout=$(bash bench/fanout.sh "$fanout_subscribers" "$secs")

echo
echo "### Row 1: durable idempotent ingest (${secs}s a cell)"
echo
echo '| clients × events/request | Shelfcast events/s | p50 / p99 ms | load gen CPU | JetStream events/s | p50 / p99 ms | load gen CPU | ratio |'
echo '|---|---:|---:|---:|---:|---:|---:|---:|'
printf '%s\n' "${ingest_rows[@]}"
echo
echo "### Row 2: contended reservations (${secs}s each)"
echo
echo '| load | Shelfcast holds/s | load gen CPU | pgbench UPDATE tps | ratio | oversold hub / pg (last units) |'
echo '|---|---:|---:|---:|---:|---|'
echo "$reserve_row"
echo
echo "### Row 3: fan-out"
echo
echo "$fanout"
