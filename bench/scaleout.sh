#!/usr/bin/env bash
# Scale-out on this machine: hub replicas on PostgreSQL 15 with NATS between them.
# - Contended reservations/s, 3 replicas, vs pgbench running the same conditional UPDATE
#   (`reserved = reserved + 1 WHERE on_hand - reserved >= 1`) on the same PostgreSQL, with the
#   same number of clients and the same 10 hot positions.
# - Ingest events/s (16 devices × 100 events/request) with 1 and with 3 replicas.
# - Change -> stream latency with writer and stream on the same replica, and on different ones.
# - Ingest with one replica alone (its own database): what one replica does without others.
# - A flash sale: 1 SKU at 1 store, 1,000 units, 20,000 reservation attempts from 200 shoppers
#   spread over the 3 replicas: exactly 1,000 granted (checked), time to sell out, p99.
# - The first row's references, the same 48 shoppers on the same 10 hot positions: one replica
#   alone on its own database; 3 replicas each alone on a database of its own, 16 shoppers at
#   each (nothing forwarded: the most any routing of holds could give with this commit path);
#   the SQLite hub (one process, no database server).
# - The machine's ceiling for the first row: the same shoppers against 3 replicas that answer
#   every hold 429 before reading it (HTTP and the load generator alone), against pgbench.
#   bash bench/scaleout.sh [seconds per row, default 10]
# DELAY_MS=0.5: the replicas and pgbench reach PostgreSQL through a TCP link that delays each
# direction by that much (bench/link.py; 0.5 = a 1 ms round trip, as to a cloud database).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-10}
services_and_binaries
base=postgres://shelfcast:shelfcast@127.0.0.1:5432
db=shelfcast_bench_$$
work=$(mktemp -d)
pids=() dbs=("$db")
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for d in "${dbs[@]}"; do PGPASSWORD=shelfcast dropdb -h 127.0.0.1 -U shelfcast --if-exists "$d" || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fresh "$db"
nport=$(free_port)
nats-server -a 127.0.0.1 -p "$nport" >/dev/null 2>&1 & pids+=($!)
# Where the replicas and pgbench reach PostgreSQL: directly, or through a delaying link.
pghost=127.0.0.1 pgport=5432
if [ -n "${DELAY_MS:-}" ]; then
  pgport=$(free_port)
  python3 bench/link.py "$pgport" 5432 "$DELAY_MS" >"$work/link.out" 2>&1 & pids+=($!)
  for _ in $(seq 50); do grep -q "link ready" "$work/link.out" && break; sleep 0.1; done
  echo "PostgreSQL through a link delaying each direction by ${DELAY_MS} ms" >&2
fi
dburl="postgres://shelfcast:shelfcast@$pghost:$pgport"

# replicas RATE: starts 3 replicas on the database with that --reservation-rate; their
# addresses in `urls`, their processes in `hubs`.
replicas() {
  urls=() hubs=()
  for i in 1 2 3; do
    SHELFCAST_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data "$work/unused$i" --database "$dburl/$db" --nats "nats://127.0.0.1:$nport" \
      --device-token "bench=*" --reservation-rate "$1" --stream-rate 0 >"$work/hub$i.out" 2>"$work/hub$i.err" & pids+=($!) hubs+=($!)
  done
  ready_all 3
}
# alone NAME [DATABASE]: a hub alone, without NATS, on a new PostgreSQL database NAME (on
# embedded SQLite when DATABASE is `sqlite`); its address in `url`, its process in `hubs`.
alone() {
  local store=(--database "$dburl/$1")
  if [ "${2:-}" = sqlite ]; then store=(); else fresh "$1" && dbs+=("$1"); fi
  SHELFCAST_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data "$work/$1" "${store[@]}" --device-token "bench=*" \
    --reservation-rate 0 --stream-rate 0 >"$work/$1.out" 2>"$work/$1.err" & pids+=($!) hubs+=($!)
  url=$(listening "$work/$1.out")
  ready "$url" "${hubs[-1]}" "$work/$1.err"
}
replicas 0
echo "replicas at ${urls[*]}, database $db, NATS on $nport, ${secs}s per row" >&2

rate() { field " ([0-9]+) $1" "$2"; }
clients=48
hot=10
# Stock that never runs out, so every request is a granted hold on both sides.
seed_hot "${urls[0]}" "$hot"

echo "pgbench: $clients clients, $hot hot rows, conditional UPDATE" >&2
PGPASSWORD=shelfcast psql -q -h 127.0.0.1 -U shelfcast -d "$db" -c \
  "CREATE TABLE bench_stock (id INT PRIMARY KEY, on_hand BIGINT NOT NULL, reserved BIGINT NOT NULL);
   INSERT INTO bench_stock SELECT g, 1000000000, 0 FROM generate_series(1, $hot) g;"
printf '\\set id random(1, %d)\nUPDATE bench_stock SET reserved = reserved + 1 WHERE id = :id AND on_hand - reserved >= 1;\n' "$hot" >"$work/reserve.sql"
pg_tps=$(PGPASSWORD=shelfcast pgbench -n -h "$pghost" -p "$pgport" -U shelfcast -c "$clients" -j 2 -T "$secs" -f "$work/reserve.sql" "$db" 2>/dev/null |
  sed -nE 's/^tps = ([0-9.]+).*/\1/p')

# holds_at URL...: the shoppers on the hot positions, spread evenly over the URLs at once; the
# holds decided per second, summed, in `held`.
holds_at() {
  local outs=() i
  for i in $(seq 0 $(($# - 1))); do
    "$sim" simulate --reserve --target "${@:$((i + 1)):1}" --token bench --rate 0 --duration "${secs}s" --concurrency $((clients / $#)) \
      --skus "$hot" --locations s1 >"$work/res$i.out" 2>/dev/null & outs+=($!)
  done
  wait "${outs[@]}"
  held=0
  for i in $(seq 0 $(($# - 1))); do held=$((held + $(rate "reservations/s" "$(cat "$work/res$i.out")"))); done
}

echo "Shelfcast: $clients shoppers over 3 replicas, $hot hot positions" >&2
holds_at "${urls[@]}"
sc_rps=$held

echo "ingest, 1 replica then 3" >&2
one=$("$sim" simulate --target "${urls[0]}" --token bench --rate 0 --duration "${secs}s" --concurrency 16 --batch 100 --skus 1000 --locations s1,s2,s3,s4 2>/dev/null)
one_eps=$(rate "events/s" "$one")
outs=()
for i in 0 1 2; do
  "$sim" simulate --target "${urls[$i]}" --token bench --rate 0 --duration "${secs}s" --concurrency 16 --batch 100 --skus 1000 \
    --locations s1,s2,s3,s4 >"$work/ing$i.out" 2>/dev/null & outs+=($!)
done
wait "${outs[@]}"
three_eps=0
for i in 0 1 2; do three_eps=$((three_eps + $(rate "events/s" "$(cat "$work/ing$i.out")"))); done

echo "ingest, one replica alone on its own database" >&2
alone "${db}_solo"
solo_eps=$(rate "events/s" "$("$sim" simulate --target "$url" --token bench --rate 0 --duration "${secs}s" --concurrency 16 --batch 100 \
  --skus 1000 --locations s1,s2,s3,s4 2>/dev/null)")

echo "change -> stream latency, 200 changes each" >&2
read -r same50 same99 samemax < <(python3 bench/fanout_latency.py "${urls[0]}" "${urls[0]}" bench 200)
read -r cross50 cross99 crossmax < <(python3 bench/fanout_latency.py "${urls[0]}" "${urls[2]}" bench 200)

echo "flash sale: 1 SKU at 1 store, 1,000 units, 20,000 attempts from 200 shoppers over the 3 replicas" >&2
curl -sf -X POST "${urls[1]}/v1/events" -H 'authorization: Bearer bench' -H 'content-type: application/json' \
  -d '[{"id":"flash-stock","type":"receipt","sku":"SKU-00000","location":"flash","qty":1000}]' >/dev/null
flash=$("$sim" simulate --reserve --target "${urls[0]},${urls[1]},${urls[2]}" --token bench --rate 0 --duration 300s --events 20000 \
  --concurrency 200 --skus 1 --locations flash 2>/dev/null)
flash_granted=$(field " ([0-9]+) granted" "$flash")
flash_out=$(field " ([0-9]+) sold out;" "$flash")
flash_p99=$(field "p99 ([0-9.]+) ms" "$flash")
flash_secs=$(field "sold out ([0-9.]+)s after" "$flash")
flash_held=$(curl -sf "${urls[2]}/v1/availability?sku=SKU-00000&location=flash" | python3 -c 'import json,sys; print(json.load(sys.stdin)["positions"][0]["reserved"])')
# Not a figure: the rule. Exactly the stock is granted, whatever the race.
[ "$flash_granted" = 1000 ] && [ "$flash_held" = 1000 ] || { echo "flash sale: $flash_granted granted, $flash_held held, not 1000" >&2; exit 1; }

echo "references: the same shoppers on one replica alone, on 3 replicas each alone, on the SQLite hub" >&2
kill "${hubs[@]}"; wait "${hubs[@]}" 2>/dev/null || true
hubs=()
alone "${db}_one"
seed_hot "$url" "$hot"
holds_at "$url"
one_rps=$held
kill "${hubs[@]}"; wait "${hubs[@]}" 2>/dev/null || true
hubs=() apart=()
for i in 1 2 3; do alone "${db}_apart$i" && seed_hot "$url" "$hot" && apart+=("$url"); done
holds_at "${apart[@]}"
apart_rps=$held
kill "${hubs[@]}"; wait "${hubs[@]}" 2>/dev/null || true
hubs=()
alone sqlite sqlite
seed_hot "$url" "$hot"
holds_at "$url"
sqlite_rps=$held

# The ceiling of this machine for the first row: the same load generator and shoppers against 3
# replicas that answer every hold at once with 429 (their --reservation-rate is 1/s), before
# reading its body, deciding or storing anything. No hold can be decided faster than that here.
echo "ceiling: the same shoppers against 3 replicas that refuse every hold at once (429)" >&2
kill "${hubs[@]}"; wait "${hubs[@]}" 2>/dev/null || true
replicas 1
outs=()
for i in 0 1 2; do
  "$sim" simulate --reserve --target "${urls[$i]}" --token bench --rate 0 --duration "${secs}s" --concurrency $((clients / 3)) \
    --skus "$hot" --locations s1 >"$work/ceil$i.out" 2>"$work/ceil$i.err" & outs+=($!)
done
wait "${outs[@]}"
ceil_rps=0 ceil_cpu=0
for i in 0 1 2; do
  o=$(cat "$work/ceil$i.out")
  ceil_rps=$((ceil_rps + $(python3 -c "print(round($(field ': ([0-9]+) reservation requests' "$o") / $(field 'simulated ([0-9.]+)s' "$o")))")))
  ceil_cpu=$((ceil_cpu + $(field 'load generator CPU: ([0-9]+)%' "$(cat "$work/ceil$i.err")")))
done

printf '| row | Shelfcast | peer / baseline | ratio |\n|---|---:|---:|---:|\n'
printf '| contended reservations/s, %d clients, %d hot positions | %s (3 replicas) | %s (pgbench UPDATE) | %s× |\n' "$clients" "$hot" "$sc_rps" "$pg_tps" "$(ratio "$sc_rps" "$pg_tps")"
printf '| ingest events/s, 16×100 per replica | %s (3 replicas) | %s (through 1 of the 3) | %s× |\n' "$three_eps" "$one_eps" "$(ratio "$three_eps" "$one_eps")"
printf '| ingest events/s, 16×100 | %s (3 replicas) | %s (1 replica alone) | %s× |\n' "$three_eps" "$solo_eps" "$(ratio "$three_eps" "$solo_eps")"
printf '| change → stream p50 / p99 / max ms | %s / %s / %s (across replicas) | %s / %s / %s (same replica) | %s× (p50) |\n' \
  "$cross50" "$cross99" "$crossmax" "$same50" "$same99" "$samemax" "$(ratio "$cross50" "$same50")"
printf '| flash sale: 1,000 units, 20,000 attempts, 200 shoppers over 3 replicas | %s granted, %s sold out, sold out in %s s, p99 %s ms | exactly 1,000 | |\n' \
  "$flash_granted" "$flash_out" "${flash_secs:-?}" "$flash_p99"
printf '| contended reservations/s, the same shoppers on one replica alone | %s | %s (pgbench UPDATE) | %s× |\n' "$one_rps" "$pg_tps" "$(ratio "$one_rps" "$pg_tps")"
printf '| contended reservations/s, 3 replicas each alone on its own database (nothing forwarded) | %s | %s (pgbench UPDATE) | %s× |\n' \
  "$apart_rps" "$pg_tps" "$(ratio "$apart_rps" "$pg_tps")"
printf '| contended reservations/s, the SQLite hub (one process, no database server) | %s | %s (pgbench UPDATE) | %s× |\n' \
  "$sqlite_rps" "$pg_tps" "$(ratio "$sqlite_rps" "$pg_tps")"
printf '| ceiling: holds answered 429 at once, same shoppers, 3 replicas | %s requests/s (load generators %s%% of a core) | %s (pgbench UPDATE) | %s× |\n' \
  "$ceil_rps" "$ceil_cpu" "$pg_tps" "$(ratio "$ceil_rps" "$pg_tps")"
