#!/usr/bin/env bash
# Builds the Tern image from docker/Dockerfile and runs a smoke test with the
# containers: a coordinator and an edge (host network, loopback ports chosen
# here), the demo origin on the host; the edge caches, a purge through the
# coordinator reaches it.
#
#   docker/smoke_test.sh            (as root; docker if present, else podman)
#   docker/smoke_test.sh --compose  the Compose cluster instead: the demo origin,
#                                   a coordinator and three edges
#                                   (docker/compose.host.yaml, free ports); a
#                                   purge through it completes on every edge
#                                   and the next read is fresh
#
# Without a Docker engine it uses podman with runc, and a local Debian 12 base
# image made with debootstrap (no registry needed): TERN_BASE_IMAGE overrides.
# Slow (the build compiles Tern): not part of tools/test.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${TERN_IMAGE:-localhost/tern:smoke}"
MODE=containers
[ "${1:-}" = "--compose" ] && MODE=compose

RUN_OPTS=()
BUILD_OPTS=()
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  ENGINE=docker
  BASE="${TERN_BASE_IMAGE:-debian:12}"
else
  need=()
  for p in podman runc debootstrap curl $([ "$MODE" = compose ] && echo docker-compose); do
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
[containers]
default_ulimits = ["nofile=20000:20000"]
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
  --build-arg "RUNTIME=$BASE" -f docker/Dockerfile -t "$IMAGE" . \
  2>&1 | tail -5
echo "smoke: image $IMAGE is $($ENGINE image inspect --format '{{.Size}}' "$IMAGE" | \
  awk '{printf "%.1f MB", $1 / 1e6}')"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ "$MODE" = compose ]; then
  ORIGIN_IMAGE="${IMAGE%:*}-origin:${IMAGE##*:}"
  $ENGINE build "${BUILD_OPTS[@]}" --network=host --pull=never --build-arg "DEBIAN=$BASE" \
    -f docker/origin.Dockerfile -t "$ORIGIN_IMAGE" . 2>&1 | tail -2
  # Compose itself: Docker's, or Debian's docker-compose speaking to podman's
  # Docker-compatible API (podman-compose 1.0 attaches a bridge network even
  # to host-network services, which this file avoids).
  COMPOSE=(docker compose)
  if [ "$ENGINE" = podman ]; then
    SOCK="$(mktemp -u /tmp/tern-podman-XXXXXX.sock)"
    podman system service --time=0 "unix://$SOCK" >/dev/null 2>&1 &
    SERVICE_PID=$!
    for _ in $(seq 1 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
    export DOCKER_HOST="unix://$SOCK"
    COMPOSE=(docker-compose)
  fi
  export TERN_IMAGE="$IMAGE" TERN_ORIGIN_IMAGE="$ORIGIN_IMAGE" TERN_TOKEN=smoke-compose
  export ORIGIN_PORT=$(free_port) COORDINATOR_HTTP_PORT=$(free_port) COORDINATOR_GRPC_PORT=$(free_port)
  EDGE_PORTS=(); ADMIN_PORTS=()
  for n in 1 2 3; do
    export "EDGE${n}_PORT=$(free_port)" "EDGE${n}_ADMIN_PORT=$(free_port)"
    EDGE_PORTS+=("$(printenv "EDGE${n}_PORT")"); ADMIN_PORTS+=("$(printenv "EDGE${n}_ADMIN_PORT")")
  done
  PROJECT="ternsmoke$$"
  down() {
    "${COMPOSE[@]}" -p "$PROJECT" -f docker/compose.host.yaml down -v >/dev/null 2>&1 || true
    if [ -n "${SERVICE_PID:-}" ]; then kill "$SERVICE_PID" 2>/dev/null || true; rm -f "$SOCK"; fi
  }
  trap down EXIT INT TERM
  fail() { echo "smoke: FAILED: $*"; "${COMPOSE[@]}" -p "$PROJECT" -f docker/compose.host.yaml logs 2>&1 | tail -30; exit 1; }
  # The images are built above: up does not build again.
  "${COMPOSE[@]}" -p "$PROJECT" -f docker/compose.host.yaml up -d --no-build >/dev/null 2>&1 ||
    fail "compose up"
  for admin in "${ADMIN_PORTS[@]}"; do
    for _ in $(seq 1 150); do
      curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && break
      sleep 0.2
    done
    curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null || fail "edge (admin $admin) not ready"
  done
  for e in "${EDGE_PORTS[@]}"; do
    curl -fsS -o /dev/null "http://127.0.0.1:$e/products/1"
    hit=no
    for _ in $(seq 1 50); do
      head=$(curl -fsS -D - -o /dev/null "http://127.0.0.1:$e/products/1" || true)
      if echo "$head" | grep -qi '^cache-status:.*hit'; then hit=yes; break; fi
      sleep 0.1
    done
    [ "$hit" = yes ] || fail "edge :$e never served /products/1 from cache"
  done
  curl -fsS -XPOST "http://127.0.0.1:$ORIGIN_PORT/admin/bump?tag=products" >/dev/null
  result=$(curl -fsS -H "Authorization: Bearer $TERN_TOKEN" -d '{"tags":["products"],"wait":"all"}' \
    "http://127.0.0.1:$COORDINATOR_HTTP_PORT/v1/purge") || fail "purge call"
  echo "$result" | grep -q '"state":"complete"' || fail "purge not complete: $result"
  for n in 1 2 3; do
    echo "$result" | grep -q "\"edge_id\":\"edge$n\",\"state\":\"applied\"" ||
      fail "edge$n did not apply: $result"
  done
  want=$(curl -fsS "http://127.0.0.1:$ORIGIN_PORT/products/1")
  for e in "${EDGE_PORTS[@]}"; do
    body=$(curl -fsS "http://127.0.0.1:$e/products/1")
    [ "$body" = "$want" ] || fail "edge :$e served stale content after the purge: $body"
  done
  "${COMPOSE[@]}" -p "$PROJECT" -f docker/compose.host.yaml stop >/dev/null 2>&1 || fail "compose stop"
  echo "smoke: ok (compose: origin, coordinator and 3 edges from $IMAGE; a purge completed on every edge and every edge then served the new content)"
  exit 0
fi

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
