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
