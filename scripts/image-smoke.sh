#!/usr/bin/env bash
# The container image as an operator meets it: built by scripts/image.sh (under 30 MiB, a
# non-root user), a hub container answers /healthz and /readyz, passes its health check, takes
# an event and streams it, and an edge container records a till's sale and syncs it to the hub.
# Containers use the host's network on loopback addresses only and are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
fail() { echo "image smoke test: $*" >&2; exit 1; }
export CONTAINERS_CONF="$PWD/scripts/containers.conf"
if ! command -v runc >/dev/null; then
  say "installing runc"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null
fi

image=$(bash scripts/image.sh | tail -1)
size=$(podman image inspect --format '{{.Size}}' "$image")
echo "image $image: $size bytes"
[ "$size" -lt $((30 * 1024 * 1024)) ] || fail "the image is $size bytes, over 30 MiB"
grep -q "image: $image\$" deploy/kubernetes/deployment.yaml || fail "deploy/kubernetes/deployment.yaml does not run $image"
user=$(podman image inspect --format '{{.Config.User}}' "$image")
[ "$user" = "10001:10001" ] || fail "the image runs as '$user', not the non-root 10001"

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
hub_port=$(port)
edge_port=$(port)
hub="http://127.0.0.1:$hub_port"
edge="http://127.0.0.1:$edge_port"
name="shelfcast-smoke-$$"
work=$(mktemp -d)
cleanup() {
  podman rm -f -v -t 2 "$name-hub" "$name-edge" >/dev/null 2>&1 || true
  [ -n "${stream:-}" ] && kill "$stream" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# Polls (10 times a second, at most 20 s) until the command succeeds.
await() {
  local what=$1
  shift
  for _ in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  cat "$work"/*-run.log >&2 2>/dev/null || true
  podman logs "$name-hub" >&2 || true
  podman logs "$name-edge" >&2 || true
  fail "timed out waiting for $what"
}

say "a hub container"
# No systemd runs the image's health check on a timer on this machine (podman says so on
# stderr, kept in $work): the script runs it itself (`podman healthcheck run`).
podman run -d --name "$name-hub" --network host -e "SHELFCAST_LISTEN=127.0.0.1:$hub_port" \
  -e "SHELFCAST_DEVICE_TOKEN=till=*;store=berlin" "$image" >/dev/null 2>"$work/hub-run.log"
await "/healthz" curl -fs "$hub/healthz"
curl -fs "$hub/readyz" | grep -q '"status":"ready"' || fail "/readyz"
pid=$(podman inspect --format '{{.State.Pid}}' "$name-hub")
[ "$(ps -o uid= -p "$pid" | tr -d ' ')" = 10001 ] || fail "the hub does not run as uid 10001"
podman healthcheck run "$name-hub" || fail "the image's health check failed on a ready hub"

say "an event in, a stream out"
curl -sN --max-time 20 "$hub/v1/stream?sku=BOOT-42&location=berlin" >"$work/stream" &
stream=$!
await "the stream to start" grep -q '^event: position' "$work/stream"
curl -fs -H 'authorization: Bearer till' -H 'content-type: application/json' \
  -d '[{"id":"smoke-1","type":"receipt","sku":"BOOT-42","location":"berlin","qty":12}]' "$hub/v1/events" | grep -q '"applied":1' || fail "ingest"
await "the event on the stream" grep -q '"on_hand":12' "$work/stream"

say "an edge container syncing to it"
podman run -d --name "$name-edge" --network host -e "SHELFCAST_LISTEN=127.0.0.1:$edge_port" "$image" \
  edge --location berlin --hub "$hub" --token store --device-token till-1=berlin >/dev/null 2>"$work/edge-run.log"
await "the edge" curl -fs "$edge/readyz"
await "the edge to learn the hub's stock" sh -c "curl -fs '$edge/v1/availability?sku=BOOT-42&location=berlin' | grep -q '\"on_hand\":12'"
curl -fs -H 'authorization: Bearer till-1' -H 'content-type: application/json' \
  -d '[{"id":"smoke-till-1","type":"sale","sku":"BOOT-42","location":"berlin","qty":1}]' "$edge/v1/events" | grep -q '"applied":1' || fail "edge ingest"
await "the sale at the hub" sh -c "curl -fs '$hub/v1/availability?sku=BOOT-42&location=berlin' | grep -q '\"on_hand\":11'"
podman healthcheck run "$name-edge" || fail "the edge's health check"
echo "image smoke test passed: $image, $size bytes"
