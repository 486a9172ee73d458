#!/usr/bin/env bash
# Runs the load-test scenarios of loadtest/k6/ with tools that exist on this
# machine (wrk + Lua, Python), bounded in time, against a local cluster that
# this script starts on free loopback ports (demo origin, coordinator, three
# edges from build/) and stops again.
#
#   loadtest/run.sh [seconds=10]
#   TERN_BUILD=build-asan loadtest/run.sh 2     (binaries of another build tree)
#
#   1. steady hits       wrk + wrk/hits.lua: hit ratio, p50/p99   (k6/hits.js)
#   2. purge storm       wrk hits + purge_storm.py: purge API latency and
#                        stale reads after completed purges      (k6/purge_storm.js)
#   3. stampede          purge-all, then wrk -c200 on 10 cold objects: origin
#                        requests per object per edge            (k6/stampede.js)
# Exit 1 if a scenario misses its threshold (the same as in the k6 scripts).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER="${1:-10}"
BUILD="${TERN_BUILD:-build}"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
if [ -z "${TERN_BUILD:-}" ] && { [ ! -x build/edge/tern-edge ] || [ ! -x build/coordinator/tern-coordinator ]; }; then
  tools/build release >/dev/null
fi

WORK="$(mktemp -d /tmp/tern-loadtest-XXXXXX)"
PIDS=()   # the cluster
WRK=()    # wrk runs of the current scenario
cleanup() {
  # Only the script itself cleans up: never a subshell (a command
  # substitution) that inherited the trap.
  [ "$BASHPID" = "$$" ] || return 0
  for p in "${WRK[@]}" "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
wait_wrk() { for p in "${WRK[@]}"; do wait "$p" 2>/dev/null || true; done; WRK=(); }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_log() { for _ in $(seq 1 100); do grep -q "listening on port" "$1" 2>/dev/null && return 0; sleep 0.1; done; cat "$1"; exit 1; }

TOKEN=loadtest
ORIGIN=$(free_port); HTTP=$(free_port); GRPC=$(free_port)
python3 tools/demo-origin.py --port "$ORIGIN" > "$WORK/origin.log" 2>&1 &
PIDS+=($!)
"$BUILD/coordinator/tern-coordinator" --listen "127.0.0.1:$HTTP" --grpc_listen "127.0.0.1:$GRPC" \
  --data_dir "$WORK/coordinator" --auth.token "$TOKEN" --rate.purges_per_sec 0 \
  --log.level warn > "$WORK/coordinator.log" 2>&1 &
PIDS+=($!)
wait_log "$WORK/coordinator.log"
EDGES=()
for n in 1 2 3; do
  "$BUILD/edge/tern-edge" --listen 127.0.0.1:0 --admin_listen 127.0.0.1:0 --origin "http://127.0.0.1:$ORIGIN" \
    --cache.dir "$WORK/edge$n" --coordinator.address "127.0.0.1:$GRPC" --coordinator.token "$TOKEN" \
    --coordinator.edge_id "edge$n" --log.access false --log.level warn > "$WORK/edge$n.log" 2>&1 &
  PIDS+=($!)
done
for n in 1 2 3; do
  wait_log "$WORK/edge$n.log"
  EDGES+=("127.0.0.1:$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$WORK/edge$n.log" | head -1)")
done
sleep 0.5
fail=0
# The demo origin's pages live 60 s by default; long enough for every run.
for e in "${EDGES[@]}"; do for i in $(seq 1 20); do curl -s -o /dev/null "http://$e/products/$i"; done; done

echo "== 1. steady hits (${SECONDS_PER}s, wrk -c32 on each edge)"
for e in "${EDGES[@]}"; do
  out=$(wrk -t1 -c32 -d"${SECONDS_PER}s" -s loadtest/wrk/hits.lua "http://$e" 2>&1)
  rps=$(echo "$out" | sed -n 's/Requests\/sec: *//p')
  ratio=$(echo "$out" | sed -n 's/hit ratio: \([0-9.]*\).*/\1/p')
  echo "   $e: $rps req/s, $(echo "$out" | grep '^p50'), hit ratio $ratio"
  python3 -c "import sys; sys.exit(0 if float('$ratio') > 0.95 else 1)" || { echo "   hit ratio below 0.95"; fail=1; }
done

echo "== 2. purge storm (${SECONDS_PER}s, 20 purges/s with wait=all, wrk hits meanwhile)"
for e in "${EDGES[@]}"; do
  wrk -t1 -c8 -d"$((SECONDS_PER + 2))s" -s loadtest/wrk/hits.lua "http://$e" > "$WORK/wrk-$e.log" 2>&1 &
  WRK+=($!)
done
sleep 1
python3 loadtest/purge_storm.py --coordinator "127.0.0.1:$HTTP" --origin "127.0.0.1:$ORIGIN" \
  --edges "$(IFS=,; echo "${EDGES[*]}")" --token "$TOKEN" --seconds "$SECONDS_PER" --rate 20 \
  | sed 's/^/   /' || fail=1
wait_wrk
for e in "${EDGES[@]}"; do
  echo "   $e during the storm: $(sed -n 's/Requests\/sec: *//p' "$WORK/wrk-$e.log") req/s, $(grep '^hit ratio' "$WORK/wrk-$e.log")"
done

echo "== 3. stampede after a purge-all (wrk -c200, 10 objects, 5s per edge at once)"
before=$(curl -s "http://127.0.0.1:$ORIGIN/admin/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["200"]+s["304"])')
curl -s -H "Authorization: Bearer $TOKEN" -d '{"purge_everything":true,"wait":"all"}' \
  "http://127.0.0.1:$HTTP/v1/purge" | grep -q '"state":"complete"' || { echo "   purge-all did not complete"; fail=1; }
for e in "${EDGES[@]}"; do
  OBJECTS=10 wrk -t1 -c200 -d5s -s loadtest/wrk/stampede.lua "http://$e" > "$WORK/stampede-$e.log" 2>&1 &
  WRK+=($!)
done
wait_wrk
after=$(curl -s "http://127.0.0.1:$ORIGIN/admin/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["200"]+s["304"])')
total=0; for e in "${EDGES[@]}"; do total=$((total + $(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$WORK/stampede-$e.log"))); done
per=$(python3 -c "print(round(($after - $before) / 30, 2))")
echo "   $total client requests, $((after - before)) reached the origin: $per per object per edge"
python3 -c "import sys; sys.exit(0 if $per <= 2 else 1)" || { echo "   collapsing failed: more than 2 origin requests per object per edge"; fail=1; }
[ $fail -eq 0 ] && echo "loadtest: all scenarios within their thresholds"
exit $fail
