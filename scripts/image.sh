#!/usr/bin/env bash
# Builds the container image: the shelfcast binary linked statically (musl), the CA
# certificates and a non-root user, FROM scratch (deploy/Containerfile). Installs what it needs
# (podman, musl-tools, the Rust musl target) and skips what is there. Prints the image's name
# and size; the last line on stdout is the image's name.
#   bash scripts/image.sh                                        # registry.example.com/shelfcast/shelfcast:<version>
#   IMAGE=registry.mycompany.example/shelfcast bash scripts/image.sh && podman push registry.mycompany.example/shelfcast:<version>
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

target=x86_64-unknown-linux-musl
need=()
command -v podman >/dev/null || need+=(podman)
command -v musl-gcc >/dev/null || need+=(musl-tools)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
# The element and the console are built into the binary.
[ -f pkg/dist/shelfcast_element_bg.wasm ] || bash scripts/build-element.sh
[ -f console/dist/console_bg.wasm ] || bash scripts/build-console.sh

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' server/Cargo.toml | head -1)
image="${IMAGE:-registry.example.com/shelfcast/shelfcast}:$version"
say "building the static binary ($target)"
cargo build --release --locked --target "$target" -p shelfcast-server
bin="target/$target/release/shelfcast"
if readelf -d "$bin" | grep -q NEEDED; then
  echo "$bin is not statically linked" >&2
  exit 1
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
# Without its symbol tables: a third of the file, of no use in a container.
strip -o "$context/shelfcast" "$bin"
cp /etc/ssl/certs/ca-certificates.crt "$context/"
mkdir "$context/data"
say "building $image"
# Docker format: it keeps the HEALTHCHECK (the OCI format has none).
podman build --quiet --format docker --build-arg "VERSION=$version" -f deploy/Containerfile -t "$image" "$context" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$image")
say "$image: $size bytes ($(( size / 1024 / 1024 )) MiB)"
echo "$image"
