#!/usr/bin/env bash
# What a contended hold and an ingested event cost this machine, by process: CPU time of every
# PostgreSQL process (backends that ended included), the replicas, NATS and the load generators,
# read from /proc, per hold or per event.
# - Contended holds on one replica alone (its own database, no NATS), 16, 48, 96 and 192
#   shoppers on 10 hot positions: holds/s, holds per commit, µs per hold by process.
# - Ingest, 3 load generators × 16 devices × 100 events per request over 1,000 SKUs × 4 stores,
#   on 1 replica and on 3 (NATS between them): events/s, µs per event by process.
# - PostgreSQL's floor for recording an event once: pgbench, 16 clients, each transaction one
#   `INSERT … ON CONFLICT (id) DO NOTHING` of 100 rows with random ids (made in the statement)
#   into a table whose only index is the id's: µs of PostgreSQL per row.
# - The budget: the machine's cores divided by 3 × pgbench's contended `UPDATE` (as
#   bench/scaleout.sh runs it), the most a hold may cost in all for 3× pgbench.
#   bash bench/cost.sh [seconds per row, default 6]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-6}
services_and_binaries
base=postgres://shelfcast:shelfcast@127.0.0.1:5432
db=shelfcast_cost_$$
work=$(mktemp -d)
pids=() hubs=()
cleanup() {
  for p in "${hubs[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${hubs[@]}"; do wait "$p" 2>/dev/null || true; done
  PGPASSWORD=shelfcast dropdb -h 127.0.0.1 -U shelfcast --if-exists "$db" || true
  rm -rf "$work"
}
trap cleanup EXIT
nport=$(free_port)
nats-server -a 127.0.0.1 -p "$nport" >/dev/null 2>&1 & pids+=($!)
hz=$(getconf CLK_TCK)
cores=$(nproc)
postmaster=$(pgrep -o -u postgres postgres)

# ticks PID...: their CPU time so far, in clock ticks.
ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0; done | paste -sd+ | bc; }
# pg_ticks: PostgreSQL's CPU time so far: its processes', and what its ended backends used.
pg_ticks() { echo "$(ticks $(pgrep -u postgres)) + $(awk '{print $16 + $17}' "/proc/$postmaster/stat")" | bc; }
# per TICKS COUNT: µs of CPU per unit.
per() { python3 -c "print('%.1f' % ($1 / $hz * 1e6 / $2))"; }
metric() { curl -sf "$1/metrics" | awk -v k="$2" '$1 == k { print $2 }'; }

# start N: N replicas on a new database (with NATS when N > 1); their addresses in `urls`.
start() {
  local links=()
  [ "$1" -gt 1 ] && links=(--nats "nats://127.0.0.1:$nport")
  fresh "$db"
  urls=() hubs=()
  for i in $(seq "$1"); do
    rm -rf "$work/data$i"
    SHELFCAST_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data "$work/data$i" --database "$base/$db" "${links[@]}" \
      --device-token "bench=*" --reservation-rate 0 --stream-rate 0 >"$work/hub$i.out" 2>"$work/hub$i.err" & hubs+=($!)
  done
  ready_all "$1"
}
stop() {
  for p in "${hubs[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${hubs[@]}"; do wait "$p" 2>/dev/null || true; done
  hubs=()
}
# load N WORD ARGS...: N load generators (round-robin over `urls`) for `secs`, after a second of
# warming up; sets `rate` (WORD per second, summed), and `pg`, `reps`, `nats`, `gen`: CPU
# ticks of PostgreSQL, the replicas, NATS and the load generators over the measured run.
load() {
  local n=$1 word=$2 outs=() i
  shift 2
  for i in $(seq 0 $((n - 1))); do
    "$sim" simulate --target "${urls[$((i % ${#urls[@]}))]}" --token bench --rate 0 --duration 1s "$@" >/dev/null 2>&1 & outs+=($!)
  done
  wait "${outs[@]}"
  local g0 r0 n0 g1 r1 n1
  g0=$(pg_ticks) r0=$(ticks "${hubs[@]}") n0=$(ticks "${pids[0]}")
  outs=()
  for i in $(seq 0 $((n - 1))); do
    /usr/bin/time -f "%U %S" -o "$work/time$i" "$sim" simulate --target "${urls[$((i % ${#urls[@]}))]}" --token bench --rate 0 \
      --duration "${secs}s" "$@" >"$work/load$i.out" 2>/dev/null & outs+=($!)
  done
  wait "${outs[@]}"
  g1=$(pg_ticks) r1=$(ticks "${hubs[@]}") n1=$(ticks "${pids[0]}")
  pg=$((g1 - g0)) reps=$((r1 - r0)) nats=$((n1 - n0)) rate=0
  for i in $(seq 0 $((n - 1))); do
    rate=$((rate + $(field " ([0-9]+) $word" "$(cat "$work/load$i.out")")))
  done
  gen=$(cat "$work"/time* | python3 -c "import sys; print(round(sum(float(x) for x in sys.stdin.read().split()) * $hz))")
  rm -f "$work"/time*
}

printf '| contended holds, one replica alone, 10 hot positions | holds/s | holds per commit | PostgreSQL µs/hold | replica µs/hold | load generator µs/hold | all µs/hold |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for shoppers in 16 48 96 192; do
  echo "contended holds, one replica alone, $shoppers shoppers" >&2
  start 1
  seed_hot "${urls[0]}" 10
  c0=$(metric "${urls[0]}" shelfcast_commit_batch_commands_count) s0=$(metric "${urls[0]}" shelfcast_commit_batch_commands_sum)
  load 1 reservations/s --reserve --concurrency "$shoppers" --skus 10 --locations s1
  c1=$(metric "${urls[0]}" shelfcast_commit_batch_commands_count) s1=$(metric "${urls[0]}" shelfcast_commit_batch_commands_sum)
  stop
  n=$((rate * secs))
  printf '| %s shoppers | %s | %s | %s | %s | %s | %s |\n' "$shoppers" "$rate" "$(python3 -c "print('%.1f' % (($s1 - $s0) / ($c1 - $c0)))")" \
    "$(per "$pg" "$n")" "$(per "$reps" "$n")" "$(per "$gen" "$n")" "$(per $((pg + reps + gen)) "$n")"
done

printf '\n| ingest, 3 × 16 devices × 100 events | events/s | PostgreSQL µs/event | replicas µs/event | NATS µs/event | load generators µs/event | all µs/event |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for n in 1 3; do
  echo "ingest, $n replica(s)" >&2
  start "$n"
  load 3 events/s --concurrency 16 --batch 100 --skus 1000 --locations s1,s2,s3,s4
  stop
  events=$((rate * secs))
  printf '| %s replica(s) | %s | %s | %s | %s | %s | %s |\n' "$n" "$rate" "$(per "$pg" "$events")" "$(per "$reps" "$events")" \
    "$(per "$nats" "$events")" "$(per "$gen" "$events")" "$(per $((pg + reps + nats + gen)) "$events")"
done

echo "PostgreSQL's floor for recording an event once (pgbench)" >&2
fresh "$db"
PGPASSWORD=shelfcast psql -q -h 127.0.0.1 -U shelfcast -d "$db" -c \
  "CREATE TABLE floor_events (id TEXT PRIMARY KEY, type TEXT NOT NULL, sku TEXT NOT NULL, location TEXT NOT NULL, qty BIGINT NOT NULL, at BIGINT, recorded_at BIGINT NOT NULL)"
cat >"$work/floor.sql" <<'SQL'
INSERT INTO floor_events (id, type, sku, location, qty, at, recorded_at)
SELECT 'ev-' || :client_id || '-' || md5(random()::text), 'sale', 'SKU-' || lpad((random() * 999)::int::text, 5, '0'),
       's' || (1 + (random() * 3)::int), 1, NULL, 0
  FROM generate_series(1, 100)
    ON CONFLICT (id) DO NOTHING;
SQL
g0=$(pg_ticks)
tps=$(PGPASSWORD=shelfcast pgbench -n -h 127.0.0.1 -U shelfcast -c 16 -j 2 -T "$secs" -f "$work/floor.sql" "$db" 2>/dev/null |
  sed -nE 's/^tps = ([0-9.]+).*/\1/p')
g1=$(pg_ticks)
rows=$(python3 -c "print(round($tps * 100))")
printf '\n| PostgreSQL alone, 100 events a transaction, 16 clients | rows/s | PostgreSQL µs/row |\n|---|---:|---:|\n'
printf '| `INSERT … ON CONFLICT (id) DO NOTHING`, the id its only index | %s | %s |\n' "$rows" "$(per $((g1 - g0)) $((rows * secs)))"

echo "the budget: pgbench's contended UPDATE, 48 clients, 10 hot rows" >&2
PGPASSWORD=shelfcast psql -q -h 127.0.0.1 -U shelfcast -d "$db" -c \
  "CREATE TABLE bench_stock (id INT PRIMARY KEY, on_hand BIGINT NOT NULL, reserved BIGINT NOT NULL);
   INSERT INTO bench_stock SELECT g, 1000000000, 0 FROM generate_series(1, 10) g;"
printf '\\set id random(1, 10)\nUPDATE bench_stock SET reserved = reserved + 1 WHERE id = :id AND on_hand - reserved >= 1;\n' >"$work/reserve.sql"
pg_tps=$(PGPASSWORD=shelfcast pgbench -n -h 127.0.0.1 -U shelfcast -c 48 -j 2 -T "$secs" -f "$work/reserve.sql" "$db" 2>/dev/null |
  sed -nE 's/^tps = ([0-9.]+).*/\1/p')
printf '\n| budget for 3× pgbench on %s cores | pgbench tps | 3× pgbench | all µs a hold may cost |\n|---|---:|---:|---:|\n' "$cores"
printf '| contended `UPDATE`, 48 clients, 10 hot rows | %.0f | %.0f | %s |\n' "$pg_tps" "$(python3 -c "print(3 * $pg_tps)")" \
  "$(python3 -c "print('%.1f' % ($cores * 1e6 / (3 * $pg_tps)))")"
