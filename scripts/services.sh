#!/usr/bin/env bash
# PostgreSQL 15 and NATS for the scale-out tests and benchmarks (and Pushpin, a peer in them), from Debian's packages, on
# loopback: installs what is missing, starts PostgreSQL, and creates the `shelfcast` role.
# Each test run creates its own databases; NATS servers are started by the tests themselves.
set -euo pipefail
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v pg_isready >/dev/null || need+=(postgresql-client-15)
command -v nats-server >/dev/null || need+=(nats-server)
command -v pushpin >/dev/null || need+=(pushpin)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! pg_lsclusters -h 2>/dev/null | grep -q '^15 *main'; then
  pg_createcluster 15 main >/dev/null
fi
pg_lsclusters -h | grep -q '^15 *main .*online' || pg_ctlcluster 15 main start
for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'shelfcast'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE ROLE shelfcast LOGIN CREATEDB PASSWORD 'shelfcast'\""
# Databases left by earlier test runs.
su postgres -c "psql -qtAc \"SELECT datname FROM pg_database WHERE datname LIKE 'shelfcast_test_%'\"" |
  while read -r db; do su postgres -c "dropdb --if-exists '$db'"; done
say "PostgreSQL 15 on 127.0.0.1:5432 (role shelfcast), nats-server $(nats-server --version | awk '{print $NF}')"
