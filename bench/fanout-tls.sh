#!/usr/bin/env bash
# Fan-out and memory per idle stream over TLS: the same hub binary, the same load generator
# (`shelfcast fanout`, one connection per subscriber), one change every 10 ms, three ways in one
# run: plain HTTP/1.1 (the baseline), HTTPS with HTTP/1.1, HTTPS with HTTP/2 (ALPN). Prints the
# table's rows and the ratios against the baseline.
#   bash bench/fanout-tls.sh [subscribers, default 10000] [seconds of changes, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
subs=${1:-10000}
secs=${2:-10}
bin=${SHELFCAST_BIN:-target/release/shelfcast}
[ -n "${SHELFCAST_BIN:-}" ] || cargo build --release -p shelfcast-server >&2
work=$(mktemp -d)
hub=
cleanup() { [ -z "$hub" ] || kill "$hub" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. bench/lib.sh

# A CA of the run's own and a certificate for 127.0.0.1 that it signs.
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -days 2 -subj /CN=shelfcast-bench-ca -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req "${ec[@]}" -subj /CN=127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >"$work/ext"
openssl x509 -req -in "$work/cert.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
  -extfile "$work/ext" -out "$work/cert.pem" 2>/dev/null

run() { # run NAME HUB-FLAGS... -- FANOUT-FLAGS...
  local name=$1 hub_flags=() fanout_flags=()
  shift
  while [ "$1" != "--" ]; do hub_flags+=("$1"); shift; done
  shift
  fanout_flags=("$@")
  echo "fan-out over $name: $subs subscribers, ${secs}s of changes" >&2
  rm -rf "$work/hub"
  SHELFCAST_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data "$work/hub" --device-token "bench=*" \
    --reservation-rate 0 --stream-rate 0 "${hub_flags[@]}" >"$work/hub.out" 2>"$work/hub.err" &
  hub=$!
  local url
  url=$(listening "$work/hub.out")
  "$bin" fanout --target "$url" --token bench --subscribers "$subs" --duration "${secs}s" --pids "$hub" "${fanout_flags[@]}"
  kill "$hub"
  wait "$hub" 2>/dev/null || true
  hub=
}

tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
plain=$(run "HTTP/1.1" --)
h1=$(run "HTTPS, HTTP/1.1" "${tls[@]}" -- --hub-ca "$work/ca.pem")
h2=$(run "HTTPS, HTTP/2" "${tls[@]}" -- --hub-ca "$work/ca.pem" --http2)

row() { # row NAME OUTPUT
  printf '| %s | %s | %s / %s / %s | %s | %s | %s%% |\n' "$1" "$(field 'fanout: ([0-9]+) subscribers.*' "$2")" \
    "$(field 'p50 ([0-9.]+) ms.*' "$2")" "$(field 'p99 ([0-9.]+) ms.*' "$2")" "$(field 'max ([0-9.]+) ms.*' "$2")" \
    "$(field ' ([0-9]+) messages/s delivered.*' "$2")" "$(field ' ([0-9.]+) KB per idle.*' "$2")" "$(field 'load generator CPU ([0-9]+)%.*' "$2")"
}
echo '| hub serving | subscribers | change → received p50 / p99 / max ms | delivered messages/s | memory per idle stream KB | load gen CPU |'
echo '|---|---:|---:|---:|---:|---:|'
row "HTTP/1.1, plain (baseline)" "$plain"
row "HTTPS, HTTP/1.1" "$h1"
row "HTTPS, HTTP/2" "$h2"
echo
rate() { field ' ([0-9]+) messages/s delivered.*' "$1"; }
mem() { field ' ([0-9.]+) KB per idle.*' "$1"; }
echo "Delivered vs plain: HTTPS/1.1 $(ratio "$(rate "$h1")" "$(rate "$plain")")×, HTTPS/2 $(ratio "$(rate "$h2")" "$(rate "$plain")")×."
echo "Memory per idle stream vs plain: HTTPS/1.1 $(ratio "$(mem "$h1")" "$(mem "$plain")")×, HTTPS/2 $(ratio "$(mem "$h2")" "$(mem "$plain")")×."
