#!/usr/bin/env bash
# What webhooks cost the SQLite hub's ingest: the same load (16 devices x 100 events, 1,000
# SKUs at 8 stores, as fast as acknowledged) on a fresh hub with no subscription (the baseline)
# and with one subscription to every position event, whose receiver on loopback answers 204.
# Rounds alternate A, B. Also: how many deliveries the receiver took, and how long after the
# load the last one arrived.
#   bash bench/webhooks.sh [seconds per measurement, default 5] [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
secs=${1:-5}
rounds=${2:-3}
bin=${SHELFCAST_BIN:-target/release/shelfcast}
[ -n "${SHELFCAST_BIN:-}" ] || cargo build --release -p shelfcast-server >&2
work=$(mktemp -d)
hub=
receiver=
trap 'kill $hub $receiver 2>/dev/null || true; rm -rf "$work"' EXIT

# The receiver: counts POSTs, answers 204; GET /count says how many so far.
rport=$(free_port)
python3 - "$rport" <<'PY' &
import sys, threading
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
import json, time
from datetime import datetime
count = 0
delays = []
lock = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        at = datetime.fromisoformat(json.loads(body)["timestamp"]).timestamp()
        with lock:
            count += 1
            delays.append((time.time() - at) * 1000)
        self.send_response(204); self.send_header("content-length", "0"); self.end_headers()
    def do_GET(self):
        global delays
        if self.path == "/delays":
            d = sorted(delays); delays = []
            q = lambda p: d[min(len(d) - 1, int(p * len(d)))] if d else 0
            body = ("%d %.1f %.1f\n" % (len(d), q(0.5), q(0.99))).encode()
        else:
            body = str(count).encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
receiver=$!
until curl -sf -o /dev/null "http://127.0.0.1:$rport/count"; do sleep 0.05; done

# run SUBSCRIBE: one measurement on a fresh hub; prints "events/s deliveries drain_s".
run() {
  local data="$work/$RANDOM$RANDOM" port
  port=$(free_port)
  SHELFCAST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data "$data" --device-token "bench=*" \
    --admin-token bench-admin --allow-private-webhooks >/dev/null 2>"$data.log" &
  hub=$!
  ready "http://127.0.0.1:$port" "$hub" "$data.log"
  if [ "$1" = yes ]; then
    curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/admin/webhooks" -H 'authorization: Bearer bench-admin' \
      -H 'content-type: application/json' \
      -d "{\"url\":\"http://127.0.0.1:$rport/hook\",\"events\":[\"position.out_of_stock\",\"position.low_stock\",\"position.back_in_stock\",\"position.oversold\"]}"
  fi
  local before out eps last now t0
  before=$(curl -sf "http://127.0.0.1:$rport/count")
  out=$("$bin" simulate --target "http://127.0.0.1:$port" --token bench --rate 0 --duration "${secs}s" --concurrency 16 \
        --batch 100 --skus 1000 --locations s1,s2,s3,s4,s5,s6,s7,s8 2>/dev/null)
  eps=$(field ' ([0-9]+) events/s acknowledged' "$out")
  # Until no delivery has arrived for a second: the backlog the load left is drained.
  t0=$(date +%s.%N); last=-1; now=$(curl -sf "http://127.0.0.1:$rport/count")
  while [ "$now" != "$last" ]; do last=$now; sleep 1; now=$(curl -sf "http://127.0.0.1:$rport/count"); done
  kill "$hub"; wait "$hub" 2>/dev/null || true
  printf '%s %s %.1f\n' "$eps" "$((now - before))" "$(echo "$(date +%s.%N) - $t0 - 1" | bc -l)"
}

a=(); b=(); deliveries=(); drains=()
for r in $(seq "$rounds"); do
  echo "round $r/$rounds: without a subscription" >&2
  read -r eps _ _ < <(run no); a+=("$eps")
  echo "round $r/$rounds: with one subscription to every position event" >&2
  read -r eps n drain < <(run yes); b+=("$eps"); deliveries+=("$n"); drains+=("$drain")
done
# Delay from a change's commit to its receiver, at a paced load (the receiver compares its
# clock with the body's `timestamp`, the commit's time, both on this machine).
echo "paced: 200 events/s for ${secs}s with the subscription" >&2
port=$(free_port); data="$work/paced"
SHELFCAST_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data "$data" --device-token "bench=*" \
  --admin-token bench-admin --allow-private-webhooks >/dev/null 2>"$data.log" &
hub=$!
ready "http://127.0.0.1:$port" "$hub" "$data.log"
curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/admin/webhooks" -H 'authorization: Bearer bench-admin' \
  -H 'content-type: application/json' \
  -d "{\"url\":\"http://127.0.0.1:$rport/hook\",\"events\":[\"position.out_of_stock\",\"position.low_stock\",\"position.back_in_stock\",\"position.oversold\"]}"
curl -sf -o /dev/null "http://127.0.0.1:$rport/delays"
"$bin" simulate --target "http://127.0.0.1:$port" --token bench --rate 200 --duration "${secs}s" --concurrency 4 \
  --batch 1 --skus 100 --locations s1,s2 >/dev/null 2>&1
sleep 1
read -r n p50 p99 < <(curl -sf "http://127.0.0.1:$rport/delays")
kill "$hub"; wait "$hub" 2>/dev/null || true

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
printf '| ingest 16 x 100, events/s | %s | %s | %s |\n' "${a[*]}" "${b[*]}" "$(ratio "$mb" "$ma")"
printf 'deliveries taken per measurement with the subscription: %s; drained %s s after the load\n' "${deliveries[*]}" "${drains[*]}"
printf 'paced 200 events/s: %s deliveries, commit to receiver p50 %s ms, p99 %s ms\n' "$n" "$p50" "$p99"
for n in "${deliveries[@]}"; do
  [ "$n" -gt 0 ] || { echo "no delivery reached the receiver" >&2; exit 1; }
done
