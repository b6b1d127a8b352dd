# Helpers the benchmark scripts share (sourced, not run).
# free_port: a TCP port on loopback that nothing listens on right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# field REGEX TEXT: the first capture group of REGEX in TEXT.
field() { sed -nE "s|.*$1.*|\1|p" <<<"$2"; }
# ratio A B: A / B to two decimals (0 when B is 0).
ratio() { python3 -c "print('%.2f' % ($1 / $2 if $2 else 0))"; }
# ready URL PID ERRFILE: waits until URL/readyz answers 200; if process PID ends first, shows
# ERRFILE and exits 1.
ready() {
  until curl -sf -o /dev/null "$1/readyz"; do
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; exit 1; }
    sleep 0.02
  done
}
# listening OUTFILE: the address a starting hub prints to OUTFILE ("listening on ADDR"),
# waiting up to 10 s for it.
listening() {
  for _ in $(seq 100); do grep -q "listening on" "$1" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/^listening on //p' "$1" | head -n1
}
# ready_all N: waits for hubs 1 to N, started with their output in $work/hub<i>.out and their
# errors in $work/hub<i>.err (their processes in `hubs`), to listen and answer ready; their
# addresses go in `urls`, in that order.
ready_all() {
  local i
  for i in $(seq "$1"); do
    urls+=("$(listening "$work/hub$i.out")")
    ready "${urls[$((i - 1))]}" "${hubs[$((i - 1))]}" "$work/hub$i.err"
  done
}
# seed_hot URL N [TYPE]: a billion units (TYPE receipt, or count) of SKU-00000 to SKU-<N-1> at
# location s1, sent to the hub at URL: stock that never runs out, so every hold is granted.
seed_hot() {
  python3 -c "import json; print(json.dumps([{'id':'seed-%d'%i,'type':'${3:-receipt}','sku':'SKU-%05d'%i,'location':'s1','qty':1000000000} for i in range($2)]))" |
    curl -sf -X POST "$1/v1/events" -H 'authorization: Bearer bench' -H 'content-type: application/json' -d @- >/dev/null
}
# fresh DATABASE: an empty database of that name on this machine's PostgreSQL.
fresh() {
  PGPASSWORD=shelfcast dropdb -h 127.0.0.1 -U shelfcast --if-exists "$1" 2>/dev/null
  PGPASSWORD=shelfcast createdb -h 127.0.0.1 -U shelfcast "$1"
}
# services_and_binaries: starts PostgreSQL and NATS; sets `bin`, the hub measured (SHELFCAST_BIN
# for an A/B against another build, else this build's, built), and `sim`, the load generator
# (`shelfcast simulate`: this build's unless SHELFCAST_SIM_BIN says, so an A/B measures two
# hubs with one generator).
services_and_binaries() {
  bash scripts/services.sh >&2
  bin=${SHELFCAST_BIN:-target/release/shelfcast}
  [ -n "${SHELFCAST_BIN:-}" ] || cargo build --release -p shelfcast-server >&2
  sim=${SHELFCAST_SIM_BIN:-$bin}
}
