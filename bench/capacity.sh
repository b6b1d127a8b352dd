#!/usr/bin/env bash
# What a replica adds: hub replicas on PostgreSQL 15 and NATS, each held to the same share of a
# core by a cgroup CPU limit (as `resources.limits.cpu` holds a pod in Kubernetes), 1 replica
# against 3, the same load on both:
# - contended reservations/s: 48 shoppers on 10 hot positions (as `bench/scaleout.sh`);
# - ingest events/s: 3 × 16 devices × 100 events per request over 1,000 SKUs;
# - the holds again on 3 replicas each alone on a database of its own, 16 shoppers at each:
#   every hold reaches its owner, nothing is forwarded (what steering clients to the owners of
#   their positions would give at most).
# On this machine's shared cores, adding replicas adds no cores; under a limit each replica
# brings its own share, as it does on a cluster. PostgreSQL, NATS and the load generators run
# unlimited. Each configuration starts on a new database.
#   bash bench/capacity.sh [seconds per row, default 10] [share of a core per replica, default 0.1]
# Needs a writable cgroup CPU controller (root; cgroup v1 `cpu` or v2 with `cpu` delegated);
# without one it says so and measures nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
secs=${1:-10}
share=${2:-0.1}
period=100000
quota=$(python3 -c "print(int($share * $period))")
if [ -w /sys/fs/cgroup/cpu/cgroup.procs ]; then
  cgroot=/sys/fs/cgroup/cpu
elif [ -w /sys/fs/cgroup/cgroup.procs ] && grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
  cgroot=/sys/fs/cgroup
else
  echo "bench/capacity.sh: no writable cgroup CPU controller here (needs root); nothing measured" >&2
  exit 0
fi
# limit DIR: holds the cgroup DIR to the share (cgroup v1 or v2).
limit() { if [ -e "$1/cpu.max" ]; then echo "$quota $period" >"$1/cpu.max"; else echo "$quota" >"$1/cpu.cfs_quota_us"; fi; }
services_and_binaries
base=postgres://shelfcast:shelfcast@127.0.0.1:5432
db=shelfcast_capacity_$$
work=$(mktemp -d)
pids=() hubs=() groups=()
stop_hubs() {
  for p in "${hubs[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${hubs[@]}"; do wait "$p" 2>/dev/null || true; done
  hubs=()
  for g in "${groups[@]}"; do rmdir "$g" 2>/dev/null || true; done
  groups=()
}
cleanup() {
  stop_hubs
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for d in "$db" "${db}_1" "${db}_2" "${db}_3"; do PGPASSWORD=shelfcast dropdb -h 127.0.0.1 -U shelfcast --if-exists "$d" || true; done
  rm -rf "$work"
}
trap cleanup EXIT
nport=$(free_port)
nats-server -a 127.0.0.1 -p "$nport" >/dev/null 2>&1 & pids+=($!)

# cpu_ticks PID...: their CPU time so far, in clock ticks.
cpu_ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd+ | bc; }
hz=$(getconf CLK_TCK)

# replicas N [apart]: N replicas on a new database, each in a cgroup of its own held to the
# share; their addresses in `urls`. `apart`: each alone on a new database of its own, without
# NATS (nothing is forwarded).
replicas() {
  local links=(--nats "nats://127.0.0.1:$nport") dbs=()
  if [ "${2:-}" = apart ]; then
    links=() dbs=("${db}_1" "${db}_2" "${db}_3")
  else
    dbs=("$db" "$db" "$db")
  fi
  for d in $(printf '%s\n' "${dbs[@]:0:$1}" | sort -u); do fresh "$d"; done
  urls=()
  for i in $(seq "$1"); do
    g="$cgroot/shelfcast_capacity_$$_$i"
    mkdir -p "$g" && limit "$g" && groups+=("$g")
    rm -rf "$work/data$i"
    # The shell joins the cgroup and becomes the replica, so every thread it starts is held.
    SHELFCAST_LOG=warn sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$g" "$bin" serve --listen 127.0.0.1:0 \
      --data "$work/data$i" --database "$base/${dbs[$((i - 1))]}" "${links[@]}" --device-token "bench=*" \
      --reservation-rate 0 --stream-rate 0 >"$work/hub$i.out" 2>"$work/hub$i.err" & hubs+=($!)
  done
  ready_all "$1"
}

# run KIND N [apart]: starts N replicas (as `replicas`), drives 3 load generators at them
# (spread round-robin); sets `rate` (the total) and `cores` (the replicas' CPU). Run in this
# shell, not a subshell, so that the cleanup stops whatever replicas and cgroups a failing row
# leaves.
run() {
  replicas "$2" "${3:-}"
  local outs=() args=() word u stocked=("${urls[0]}")
  # Apart, each replica's database needs stock of its own.
  [ "${3:-}" = apart ] && stocked=("${urls[@]}")
  if [ "$1" = holds ]; then
    for u in "${stocked[@]}"; do seed_hot "$u" 10; done
    args=(--reserve --concurrency 16 --skus 10 --locations s1) word=reservations/s
  else
    args=(--concurrency 16 --batch 100 --skus 1000 --locations s1,s2,s3,s4) word=events/s
  fi
  local t0 s0
  t0=$(cpu_ticks "${hubs[@]}") s0=$(date +%s.%N)
  for i in 0 1 2; do
    "$sim" simulate --target "${urls[$((i % $2))]}" --token bench --rate 0 --duration "${secs}s" "${args[@]}" \
      >"$work/load$i.out" 2>/dev/null & outs+=($!)
  done
  wait "${outs[@]}"
  local t1 s1 n
  t1=$(cpu_ticks "${hubs[@]}") s1=$(date +%s.%N)
  rate=0
  for i in 0 1 2; do
    n=$(field " ([0-9]+) $word" "$(cat "$work/load$i.out")")
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "bench/capacity.sh: $1 on $2 replica(s) measured nothing (see the replicas' logs)" >&2; exit 1; }
    rate=$((rate + n))
  done
  cores=$(python3 -c "print('%.2f' % (($t1 - $t0) / $hz / ($s1 - $s0)))")
  stop_hubs
}

echo "each replica held to $share of a core; ${secs}s per row" >&2
echo "contended holds, 1 replica then 3" >&2
run holds 1; h1=$rate hc1=$cores
run holds 3; h3=$rate hc3=$cores
echo "ingest, 1 replica then 3" >&2
run ingest 1; i1=$rate ic1=$cores
run ingest 3; i3=$rate ic3=$cores
echo "contended holds, 3 replicas each alone (nothing forwarded)" >&2
run holds 3 apart; a3=$rate ac3=$cores

printf '| row, each replica held to %s of a core | 1 replica | 3 replicas | 3 ÷ 1 |\n|---|---:|---:|---:|\n' "$share"
printf '| contended reservations/s, 48 shoppers, 10 hot positions | %s (replicas used %s cores) | %s (%s cores) | %s× |\n' \
  "$h1" "$hc1" "$h3" "$hc3" "$(ratio "$h3" "$h1")"
printf '| ingest events/s, 3 × 16 devices × 100 events | %s (%s cores) | %s (%s cores) | %s× |\n' \
  "$i1" "$ic1" "$i3" "$ic3" "$(ratio "$i3" "$i1")"
printf '| contended reservations/s, each replica alone on its own database (nothing forwarded) | %s (%s cores) | %s (%s cores) | %s× |\n' \
  "$h1" "$hc1" "$a3" "$ac3" "$(ratio "$a3" "$h1")"
