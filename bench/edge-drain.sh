#!/usr/bin/env bash
# An edge node records N events (default 1,000,000) while its hub is unreachable, then the hub
# comes up and the edge drains: time to drain, events/s, and a check that the hub applied
# exactly N with 0 duplicates and that every position matches the edge's own view. With
# DELAY_MS, the edge reaches the hub through a link that delays each direction that long
# (bench/link.py), as a store's broadband line does.
#   bash bench/edge-drain.sh [N] [DELAY_MS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
n=${1:-1000000}
delay=${2:-0}
# SHELFCAST_BIN: measure that binary instead (an A/B against another build).
bin=${SHELFCAST_BIN:-target/release/shelfcast}
[ -n "${SHELFCAST_BIN:-}" ] || cargo build --release -p shelfcast-server >&2
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT
port=$(free_port)
hub="http://127.0.0.1:$port"
upstream=$hub
if [ "$delay" -gt 0 ]; then
  link=$(free_port)
  python3 bench/link.py "$link" "$port" "$delay" >"$dir/link.out" &
  pids+=("$!")
  for _ in $(seq 100); do grep -q "link ready" "$dir/link.out" 2>/dev/null && break; sleep 0.1; done
  upstream="http://127.0.0.1:$link"
  echo "the edge reaches the hub through a link of ${delay} ms each way" >&2
fi

coproc EDGE { SHELFCAST_LOG=${EDGE_LOG:-error} exec "$bin" edge --location store-1 --hub "$upstream" --token store --listen 127.0.0.1:0 \
  --data "$dir/edge" --device-token "till=store-1"; }
pids+=("$EDGE_PID")
read -r line <&"${EDGE[0]}"
edge=${line#listening on }
echo "edge at $edge, hub (down) at $hub" >&2

echo "recording $n events at the edge while the hub is down…" >&2
start=$(date +%s.%N)
"$bin" simulate --target "$edge" --token till --rate 0 --duration 600s --events "$n" --batch 1000 --concurrency 4 \
  --skus 2000 --locations store-1 >&2
rec=$(echo "$(date +%s.%N) - $start" | bc -l)
pending=$(curl -s "$edge/v1/sync" | sed -E 's/.*"pending":([0-9]+).*/\1/')
echo "recorded: $pending pending after ${rec}s" >&2

echo "hub up; draining…" >&2
SHELFCAST_LOG=error "$bin" serve --listen "127.0.0.1:$port" --data "$dir/hub" --device-token "store=store-1" >/dev/null &
pids+=("$!")
start=$(date +%s.%N)
while :; do
  s=$(curl -s "$edge/v1/sync" || true)
  p=$(sed -nE 's/.*"pending":([0-9]+).*/\1/p' <<<"$s")
  if [ "$p" = "0" ]; then break; fi
  printf '\rpending %s      ' "${p:-?}" >&2
  sleep 0.2
done
drain=$(echo "$(date +%s.%N) - $start" | bc -l)
echo >&2
metrics=$(curl -s "$hub/metrics")
applied=$(awk '/^shelfcast_events_total\{result="applied"\}/{print $2}' <<<"$metrics")
dups=$(awk '/^shelfcast_events_total\{result="duplicate"\}/{print $2}' <<<"$metrics")
rejected=$(awk '/^shelfcast_events_total\{result="rejected"\}/{print $2}' <<<"$metrics")

# Every position: the hub's on-hand against the edge's (once the edge has followed the hub).
sleep $((2 + delay / 100))
skus=$(seq -f "SKU-%05g" 0 1999)
mismatch=0
for chunk in $(echo "$skus" | xargs -n 50 | tr ' ' ',' ); do
  q="sku=${chunk%%,*}"
  list=$(tr ',' '\n' <<<"$chunk" | sed 's/$/@store-1/' | paste -sd, -)
  h=$(curl -s "$hub/v1/availability?positions=$list" | grep -o '"on_hand":-\?[0-9]*' | tr '\n' ' ')
  e=$(curl -s "$edge/v1/availability?positions=$list" | grep -o '"on_hand":-\?[0-9]*' | tr '\n' ' ')
  [ "$h" = "$e" ] || mismatch=$((mismatch + 1))
done
printf '| events | recorded offline in | drained in | events/s | applied at hub | duplicates | rejected | position chunks differing |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|\n'
printf '| %s | %.1f s | %.1f s | %.0f | %s | %s | %s | %s |\n' "$pending" "$rec" "$drain" "$(echo "$pending / $drain" | bc -l)" \
  "$applied" "${dups:-0}" "${rejected:-0}" "$mismatch"
