#!/usr/bin/env bash
# Catalogue scale: resident memory per position and time from start to ready, on a ledger of
# N positions (N/50 SKUs at 50 stores, one count each), for the SQLite hub and for one replica
# on PostgreSQL.
#   bash bench/catalogue.sh [N ...]            (default: 1000000)
#   SHELFCAST_BIN=path/to/shelfcast bash bench/catalogue.sh 1000000   (measure another build)
#   BACKENDS="sqlite" bash bench/catalogue.sh 10000000                (one backend only)
#   BACKENDS="replicas" bash bench/catalogue.sh 1000000                 (memory of 3 replicas vs one holding all)
# A row: backend, positions, seconds from the process's start to `/readyz` answering 200 (the
# hub listens only once its positions are loaded), resident memory when ready, the same for an
# empty ledger, and (ready - empty) / N bytes per position. After each start one position is read
# back through `/v1/availability` and compared with what the ledger holds. On SQLite the hub is
# then sent one sale and killed with -9, and the start after the crash is timed too (the events
# after the last write of the positions table are applied again at that start).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
sizes=("${@:-1000000}")
backends=${BACKENDS:-sqlite postgres}
command -v sqlite3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q sqlite3 >&2
bin=${SHELFCAST_BIN:-target/release/shelfcast}
[ -n "${SHELFCAST_BIN:-}" ] || cargo build --release -p shelfcast-server >&2
base=postgres://shelfcast:shelfcast@127.0.0.1:5432
case " $backends " in *" postgres "* | *" replicas "*) bash scripts/services.sh >&2 ;; esac
work=$(mktemp -d)
pid=
dbs=()
cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  for d in "${dbs[@]}"; do PGPASSWORD=shelfcast dropdb -h 127.0.0.1 -U shelfcast --if-exists "$d" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# start ARGS...: starts a hub, waits until /readyz answers 200; sets pid, url, ready_s, rss_kb,
# anon_kb (the private part of rss_kb: without the program's code mapped from its file, which
# every process of the same binary on a machine shares).
start() {
  local port t0
  port=$(free_port)
  t0=$(date +%s.%N)
  SHELFCAST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --device-token "bench=*" "$@" >"$work/out" 2>"$work/err" &
  pid=$!
  url="http://127.0.0.1:$port"
  ready "$url" "$pid" "$work/err"
  ready_s=$(python3 -c "import time; print('%.2f' % (time.time() - $t0))")
  rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  anon_kb=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status")
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

# check SKU LOCATION ON_HAND: the hub answers the ledger's count of one position.
check() {
  local got
  got=$(curl -sf "$url/v1/availability?sku=$1&location=$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["positions"][0]["on_hand"])')
  [ "$got" = "$3" ] || { echo "read $1@$2: on_hand $got, the ledger has $3" >&2; exit 1; }
}

# The positions, in key order: SKU i at store j holds (i * 7 + j) % 100 units, version i*50+j+1.
positions_sql() {
  cat <<SQL
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1)
SELECT printf('SKU-%08d', i / 50), printf('store-%02d', i % 50), ((i / 50) * 7 + i % 50) % 100, i + 1 FROM n
SQL
}

# pg_positions DB N: writes the N positions into a migrated PostgreSQL database, each with its
# partition (FNV-1a 64 of the SKU mod 256, as `protocol::partition`), every partition at version N.
pg_positions() {
  echo "writing $2 positions to PostgreSQL database $1" >&2
  python3 - "$2" <<'PY' | PGPASSWORD=shelfcast psql -q -h 127.0.0.1 -U shelfcast -d "$1" -c "\copy positions (sku, location, on_hand, version, part) FROM STDIN WITH (FORMAT csv)"
import sys
n = int(sys.argv[1])
out = sys.stdout
for s in range((n + 49) // 50):
    sku = 'SKU-%08d' % s
    h = 0xcbf29ce484222325
    for b in sku.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    part = h % 256
    for j in range(min(50, n - s * 50)):
        out.write('%s,store-%02d,%d,%d,%d\n' % (sku, j, (s * 7 + j) % 100, s * 50 + j + 1, part))
PY
  PGPASSWORD=shelfcast psql -q -h 127.0.0.1 -U shelfcast -d "$1" -c "UPDATE partitions SET version = $2;" -c "VACUUM ANALYZE positions;"
}

echo "backend | positions | start to ready (s) | resident when ready (MB) | empty (MB) | bytes/position | start after kill -9 (s)"
for backend in $backends; do
  for n in "${sizes[@]}"; do
    last_sku=$(printf 'SKU-%08d' $(((n - 1) / 50)))
    last_loc=$(printf 'store-%02d' $(((n - 1) % 50)))
    last_qty=$(((((n - 1) / 50) * 7 + (n - 1) % 50) % 100))
    case $backend in
      replicas) continue ;; # below
      sqlite)
        dir="$work/sqlite-$n"
        start --data "$dir"
        empty_kb=$rss_kb
        stop
        echo "writing $n positions to $dir" >&2
        sqlite3 "$dir/shelfcast.db" "PRAGMA journal_mode=WAL; BEGIN;
          INSERT INTO positions (sku, location, on_hand, version) $(positions_sql "$n");
          UPDATE snapshot SET seq = 0, version = $n, issued = $n; COMMIT;" >/dev/null
        args=(--data "$dir")
        ;;
      postgres)
        db=shelfcast_catalogue_$$_$n
        dbs+=("$db")
        PGPASSWORD=shelfcast createdb -h 127.0.0.1 -U shelfcast "$db"
        start --data "$work/unused" --database "$base/$db"
        empty_kb=$rss_kb
        stop
        pg_positions "$db" "$n"
        args=(--data "$work/unused" --database "$base/$db")
        ;;
    esac
    echo "starting on $n positions ($backend)" >&2
    start "${args[@]}"
    check "$last_sku" "$last_loc" "$last_qty"
    check SKU-00000000 store-00 0
    first_s=$ready_s first_kb=$rss_kb crash_s=-
    if [ "$backend" = sqlite ]; then
      curl -sf -o /dev/null -X POST "$url/v1/events" -H 'authorization: Bearer bench' -H 'content-type: application/json' \
        -d "[{\"id\":\"crash-$n\",\"type\":\"receipt\",\"sku\":\"$last_sku\",\"location\":\"$last_loc\",\"qty\":1}]"
      kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
      start "${args[@]}"
      check "$last_sku" "$last_loc" $((last_qty + 1))
      crash_s=$ready_s
    fi
    stop
    per=$(python3 -c "print(round(($first_kb - $empty_kb) * 1024 / $n))")
    echo "$backend | $n | $first_s | $((first_kb / 1024)) | $((empty_kb / 1024)) | $per | $crash_s"
  done
done

# Replicas: the same N positions over 3 replicas on PostgreSQL (NATS between them), against
# one replica holding them all. Each replica holds the partitions it owns (and those its
# readers need); the row is each one's resident memory once they have shared the partitions
# and let go of what they took before the others joined.
case " $backends " in *" replicas "*) ;; *) exit 0 ;; esac
n=${sizes[0]}
last_sku=$(printf 'SKU-%08d' $(((n - 1) / 50)))
last_loc=$(printf 'store-%02d' $(((n - 1) % 50)))
last_qty=$(((((n - 1) / 50) * 7 + (n - 1) % 50) % 100))
db=shelfcast_catalogue_$$_replicas
dbs+=("$db")
PGPASSWORD=shelfcast createdb -h 127.0.0.1 -U shelfcast "$db"
start --data "$work/unused" --database "$base/$db"
stop
pg_positions "$db" "$n"
start --data "$work/unused" --database "$base/$db"
alone_kb=$rss_kb alone_anon=$anon_kb
check SKU-00000000 store-00 0
stop
nport=$(free_port)
nats-server -a 127.0.0.1 -p "$nport" >/dev/null 2>&1 &
nats_pid=$!
rpids=() rurls=()
trap 'kill "${rpids[@]}" "$nats_pid" 2>/dev/null || true; cleanup' EXIT
for i in 1 2 3; do
  port=$(free_port)
  SHELFCAST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --device-token "bench=*" --data "$work/unused" --database "$base/$db" \
    --nats "nats://127.0.0.1:$nport" --follow-idle 2s >"$work/r$i.out" 2>"$work/r$i.err" &
  rpids+=($!) rurls+=("http://127.0.0.1:$port")
done
for u in "${rurls[@]}"; do until curl -sf -o /dev/null "$u/readyz"; do sleep 0.1; done; done
# Shared when the three together hold each position once, each about a third.
gauge() { curl -sf "$1/metrics" | sed -nE "s/^$2 ([0-9]+)$/\1/p"; }
for _ in $(seq 600); do
  total=0 most=0
  for u in "${rurls[@]}"; do h=$(gauge "$u" shelfcast_positions); h=${h:-0}; total=$((total + h)); [ "$h" -gt "$most" ] && most=$h; done
  [ "$total" = "$n" ] && [ "$most" -lt $((n / 2)) ] && break
  sleep 0.5
done
[ "$total" = "$n" ] || { echo "the replicas hold $total positions, not $n" >&2; exit 1; }
sleep 15 # freed memory goes back to the system within the allocator's decay time (10 s)
url=${rurls[1]} check "$last_sku" "$last_loc" "$last_qty"
worst=0 worst_anon=0
for p in "${rpids[@]}"; do
  kb=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status") anon=$(awk '/^RssAnon/ {print $2}' "/proc/$p/status")
  [ "$kb" -gt "$worst" ] && worst=$kb
  [ "$anon" -gt "$worst_anon" ] && worst_anon=$anon
  echo "replica $p: $((kb / 1024)) MB resident, $((anon / 1024)) MB of it private" >&2
done
echo
echo "replicas | positions | memory | one replica holding all (MB) | the largest of 3 replicas (MB) | ratio"
echo "postgres, 3 replicas | $n | resident | $((alone_kb / 1024)) | $((worst / 1024)) | $(ratio "$worst" "$alone_kb")"
echo "postgres, 3 replicas | $n | private (resident less the shared code) | $((alone_anon / 1024)) | $((worst_anon / 1024)) | $(ratio "$worst_anon" "$alone_anon")"
