#!/usr/bin/env bash
# Fan-out: N SSE subscribers watching one position, one change every 10 ms; the SQLite hub vs
# Pushpin (Debian's pushpin, with its zurl, fed through its HTTP publish API), same subscribers,
# same Rust load generator (`shelfcast fanout`), on loopback. Prints the table's rows.
#   bash bench/fanout.sh [subscribers, default 10000] [seconds of changes, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
subs=${1:-10000}
secs=${2:-10}
command -v pushpin >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q pushpin >&2
# SHELFCAST_BIN: measure that binary instead (an A/B against another build).
bin=${SHELFCAST_BIN:-target/release/shelfcast}
[ -n "${SHELFCAST_BIN:-}" ] || cargo build --release -p shelfcast-server >&2
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. bench/lib.sh
row() { # row NAME OUTPUT
  printf '| %s | %s | %s / %s / %s | %s | %s | %s%% |\n' "$1" "$(field 'fanout: ([0-9]+) subscribers.*' "$2")" \
    "$(field 'p50 ([0-9.]+) ms.*' "$2")" "$(field 'p99 ([0-9.]+) ms.*' "$2")" "$(field 'max ([0-9.]+) ms.*' "$2")" \
    "$(field ' ([0-9]+) messages/s delivered.*' "$2")" "$(field ' ([0-9.]+) KB per idle.*' "$2")" "$(field 'load generator CPU ([0-9]+)%.*' "$2")"
}

echo "fan-out: the hub, $subs subscribers, ${secs}s of changes" >&2
SHELFCAST_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data "$work/hub" --device-token "bench=*" \
  --reservation-rate 0 --stream-rate 0 >"$work/hub.out" 2>"$work/hub.err" &
hub=$!
pids+=($hub)
url=$(listening "$work/hub.out")
sc=$("$bin" fanout --target "$url" --token bench --subscribers "$subs" --duration "${secs}s" --pids "$hub")
kill "$hub"

echo "fan-out: Pushpin $(pushpin --version 2>&1 | head -1 | awk '{print $2}'), $subs subscribers, ${secs}s of changes" >&2
mkdir -p "$work/pushpin/run" "$work/pushpin/log"
run=$work/pushpin/run
origin=$(free_port)
http=$(free_port)
echo "* 127.0.0.1:$origin" >"$work/pushpin/routes"
# Pushpin's fixed ports (5560-5563) moved out of the way, and below the ephemeral range, where
# thousands of just-closed subscriber connections may still hold a port.
offset=$((10000 + RANDOM % 15000))
# Pushpin reaches its origin through zurl; this one may call loopback, and queues deep enough
# for every subscriber at once. Pushpin's own message rate limit is lifted for the comparison.
sed -e "s|ipc:///var/run/zurl|ipc://$run|" -e 's|^deny=.*|deny=|' -e 's|^max_open_requests=.*|max_open_requests=50000|' \
  -e 's|^in_hwm=.*|in_hwm=50000|' -e 's|^out_hwm=.*|out_hwm=50000|' /etc/zurl.conf >"$work/pushpin/zurl.conf"
sed -e "s|^rundir=.*|rundir=$run|" -e "s|^logdir=.*|logdir=$work/pushpin/log|" \
  -e "s|^routesfile=.*|routesfile=$work/pushpin/routes|" -e 's|^message_rate=.*|message_rate=100000000|' \
  -e 's|^message_hwm=.*|message_hwm=100000000|' -e 's|^log_level=.*|log_level=1|' -e "s|^port_offset=.*|port_offset=$offset|" \
  -e "s|^\[proxy\]|[proxy]\nzurl_out_specs=ipc://$run/zurl-in\nzurl_out_stream_specs=ipc://$run/zurl-in-stream\nzurl_in_specs=ipc://$run/zurl-out|" \
  /etc/pushpin/pushpin.conf >"$work/pushpin/pushpin.conf"
publish_port=$(($(sed -nE 's/^push_in_http_port=([0-9]+)/\1/p' "$work/pushpin/pushpin.conf") + offset))
zurl --config="$work/pushpin/zurl.conf" >"$work/pushpin/zurl.log" 2>&1 &
pids+=($!)
pushpin --config "$work/pushpin/pushpin.conf" --port "127.0.0.1:$http" --loglevel 1 >"$work/pushpin/out.log" 2>&1 &
pids+=($!)
up() { (echo >"/dev/tcp/127.0.0.1/$http") 2>/dev/null && (echo >"/dev/tcp/127.0.0.1/$publish_port") 2>/dev/null; }
for _ in $(seq 100); do up && break; sleep 0.1; done
up || { echo "Pushpin did not start:" >&2; cat "$work/pushpin/out.log" >&2; exit 1; }
serving=$(pgrep -d, -f "$work/pushpin/")
pp=$("$bin" fanout --target "http://127.0.0.1:$http" --origin "127.0.0.1:$origin" --publish "http://127.0.0.1:$publish_port/publish/" \
  --subscribers "$subs" --duration "${secs}s" --pids "$serving")

sc_rate=$(field ' ([0-9]+) messages/s delivered.*' "$sc")
pp_rate=$(field ' ([0-9]+) messages/s delivered.*' "$pp")
echo '| server | subscribers | change → received p50 / p99 / max ms | delivered messages/s | memory per idle connection KB | load gen CPU |'
echo '|---|---:|---:|---:|---:|---:|'
row "Shelfcast hub" "$sc"
row "Pushpin (zurl, condure, proxy, handler)" "$pp"
echo
echo "Delivered throughput ratio: $(python3 -c "print('%.2f' % ($sc_rate / max($pp_rate, 1)))")× Pushpin."
