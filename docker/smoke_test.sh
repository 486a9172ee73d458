#!/usr/bin/env bash
# Builds the Tern image from docker/Dockerfile and runs a smoke test with the
# containers: a coordinator and an edge (host network, loopback ports chosen
# here), the demo origin on the host; the edge caches, a purge through the
# coordinator reaches it.
#
#   docker/smoke_test.sh            (as root; docker if present, else podman)
#
# Without a Docker engine it uses podman with runc, and a local Debian 12 base
# image made with debootstrap (no registry needed): TERN_BASE_IMAGE overrides.
# Slow (the build compiles Tern): not part of tools/test.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${TERN_IMAGE:-localhost/tern:smoke}"

RUN_OPTS=()
BUILD_OPTS=()
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  ENGINE=docker
  BASE="${TERN_BASE_IMAGE:-debian:12}"
else
  need=()
  for p in podman runc debootstrap curl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  ENGINE=podman
  export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/.cache/containers.conf}"
  mkdir -p .cache
  cat > "$CONTAINERS_CONF" <<'CONF'
[engine]
runtime = "runc"
CONF
  # Limits no higher than this process's own (no CAP_SYS_RESOURCE needed);
  # the docker image format keeps the HEALTHCHECK.
  RUN_OPTS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
  BUILD_OPTS=(--format docker)
  BASE="${TERN_BASE_IMAGE:-localhost/debian:12}"
  if ! podman image exists "$BASE"; then
    ROOTFS="$(mktemp -d /var/tmp/tern-debian-XXXXXX)"
    echo "smoke: making $BASE with debootstrap"
    debootstrap --variant=minbase bookworm "$ROOTFS" http://deb.debian.org/debian >/dev/null
    tar -C "$ROOTFS" -c . | podman import - "$BASE" >/dev/null
    rm -rf "$ROOTFS"
  fi
fi
echo "smoke: building $IMAGE with $ENGINE (base $BASE)"
$ENGINE build "${BUILD_OPTS[@]}" --network=host --pull=never --build-arg "DEBIAN=$BASE" \
  -f docker/Dockerfile -t "$IMAGE" . \
  2>&1 | tail -5

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ORIGIN=$(free_port); HTTP=$(free_port); GRPC=$(free_port); EDGE=$(free_port); ADMIN=$(free_port)
NAME="tern-smoke-$$"
PIDS=()
cleanup() {
  $ENGINE rm -f "$NAME-coord" "$NAME-edge" >/dev/null 2>&1 || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

python3 tools/demo-origin.py --port "$ORIGIN" >/dev/null 2>&1 &
PIDS+=($!)
$ENGINE run -d "${RUN_OPTS[@]}" --name "$NAME-coord" --network=host \
  -e TERN_COORDINATOR_LISTEN="127.0.0.1:$HTTP" -e TERN_COORDINATOR_GRPC_LISTEN="127.0.0.1:$GRPC" \
  -e TERN_COORDINATOR_AUTH_TOKEN=smoke -e TERN_HEALTH_PORT="$HTTP" \
  "$IMAGE" tern-coordinator --config /etc/tern/coordinator.yaml >/dev/null
$ENGINE run -d "${RUN_OPTS[@]}" --name "$NAME-edge" --network=host \
  -e TERN_EDGE_LISTEN="127.0.0.1:$EDGE" -e TERN_EDGE_ADMIN_LISTEN="127.0.0.1:$ADMIN" \
  -e TERN_EDGE_ORIGIN="http://127.0.0.1:$ORIGIN" \
  -e TERN_EDGE_COORDINATOR_ADDRESS="127.0.0.1:$GRPC" -e TERN_EDGE_COORDINATOR_TOKEN=smoke \
  -e TERN_EDGE_COORDINATOR_EDGE_ID=smoke-edge -e TERN_HEALTH_PORT="$ADMIN" \
  "$IMAGE" >/dev/null

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$ADMIN/readyz" >/dev/null || { $ENGINE logs "$NAME-edge"; exit 1; }

fail() { echo "smoke: FAILED: $*"; $ENGINE logs "$NAME-edge" | tail -20; exit 1; }
curl -fsS -o /dev/null "http://127.0.0.1:$EDGE/products/1"
sleep 0.3
status=$(curl -fsS -D - -o /dev/null "http://127.0.0.1:$EDGE/products/1" | tr -d '\r' | grep -i '^cache-status:')
echo "$status" | grep -q "hit" || fail "second request not a hit: $status"
curl -fsS -XPOST "http://127.0.0.1:$ORIGIN/admin/bump?tag=products" >/dev/null
result=$(curl -fsS -H 'Authorization: Bearer smoke' -d '{"tags":["products"],"wait":"all"}' \
  "http://127.0.0.1:$HTTP/v1/purge")
echo "$result" | grep -q '"state":"complete"' || fail "purge not complete: $result"
echo "$result" | grep -q '"edge_id":"smoke-edge","state":"applied"' || fail "edge did not apply: $result"
body=$(curl -fsS "http://127.0.0.1:$EDGE/products/1")
want=$(curl -fsS "http://127.0.0.1:$ORIGIN/products/1")
[ "$body" = "$want" ] || fail "stale content after the purge: $body (origin: $want)"
# The image's HEALTHCHECK command, run now (podman runs it only under systemd).
if [ "$ENGINE" = podman ]; then
  podman healthcheck run "$NAME-edge" >/dev/null 2>&1 && health=healthy || fail "HEALTHCHECK failed"
else
  health=$(docker inspect --format '{{.State.Health.Status}}' "$NAME-edge")
fi
$ENGINE stop -t 10 "$NAME-edge" >/dev/null
code=$($ENGINE inspect --format '{{.State.ExitCode}}' "$NAME-edge")
[ "$code" = "0" ] || fail "edge exited with $code on SIGTERM"
echo "smoke: ok (image $IMAGE: edge cached, purge applied through the coordinator, health $health, clean SIGTERM)"
