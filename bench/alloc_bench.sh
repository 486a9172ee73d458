#!/usr/bin/env bash
# Heap allocations per cache hit in tern-edge: keep-alive hits of 1 KiB and
# 16 KiB objects from the memory tier and from the disk tier, counted by an
# LD_PRELOAD library (bench/alloc_count.c) over a wrk run; the process's
# allocations while idle over the same time are subtracted.
#
#   bench/alloc_bench.sh [duration_s=5]
#
# Pinning: tern-edge (one loop, one blocking thread) on CPU 0, wrk (-c8)
# and the origin (nginx) on CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-5}"
source bench/lib.sh
bench_setup allocbench nginx-light wrk gcc
ORIGIN_PORT=$(free_port)
mkdir -p "$WORK/www" "$WORK/origin"
for kb in 1 16; do head -c $((kb * 1024)) /dev/urandom > "$WORK/www/obj${kb}k"; done
chmod 755 "$WORK" "$WORK/www"; chmod 644 "$WORK"/www/*
origin_nginx_conf "$ORIGIN_PORT" "$WORK/www" > "$WORK/origin/nginx.conf"
taskset -c 1 nginx -c "$WORK/origin/nginx.conf" -p "$WORK/origin" &
PIDS+=($!)
gcc -O2 -shared -fPIC -o "$WORK/alloc_count.so" bench/alloc_count.c -lpthread

count() {
  local v
  v=$(cat "$1" 2>/dev/null || true)
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "no allocation count in $1" >&2; exit 1; }
  echo "$v"
}
# start <name> [tern flags...]: a tern-edge counted into $WORK/<name>.count;
# its port in STARTED_PORT (not echoed: a subshell would lose its PID).
start() {
  local name=$1; shift
  local port admin
  port=$(free_port); admin=$(free_port)
  ALLOC_COUNT_FILE="$WORK/$name.count" LD_PRELOAD="$WORK/alloc_count.so" taskset -c 0 \
    build/edge/tern-edge --listen "127.0.0.1:$port" --admin_listen "127.0.0.1:$admin" \
    --origin "http://127.0.0.1:$ORIGIN_PORT" --cache.dir "$WORK/$name" --server.loops 1 \
    --server.blocking_threads 1 --log.level warn "$@" > "$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$admin/healthz" && break; sleep 0.1; done
  STARTED_PORT=$port
}
start memory
MEM_PORT=$STARTED_PORT
start disk --cache.memory_max_object_size 16   # nothing fits the memory tier
DISK_PORT=$STARTED_PORT

printf "\n%-8s %-7s %12s %14s %16s\n" tier size requests allocations "allocations/hit"
for tier in memory disk; do
  port=$MEM_PORT; [ "$tier" = disk ] && port=$DISK_PORT
  for kb in 1 16; do
    for _ in 1 2 3 4 5; do curl -s -o /dev/null "http://127.0.0.1:$port/obj${kb}k"; done
    status=$(curl -s -D - -o /dev/null "http://127.0.0.1:$port/obj${kb}k" | tr -d '\r' | grep -i '^cache-status' || true)
    echo "$status" | grep -q '; hit' || { echo "$tier /obj${kb}k is not a hit: $status" >&2; exit 1; }
    sleep 0.1
    idle0=$(count "$WORK/$tier.count"); sleep "$DURATION"; idle1=$(count "$WORK/$tier.count")
    a0=$(count "$WORK/$tier.count")
    out=$(taskset -c 1 wrk -t1 -c8 -d"${DURATION}s" "http://127.0.0.1:$port/obj${kb}k")
    sleep 0.1
    a1=$(count "$WORK/$tier.count")
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    reqs=${reqs:-0}
    allocs=$((a1 - a0 - (idle1 - idle0)))
    printf "%-8s %-7s %12s %14s %16s\n" "$tier" "${kb}KiB" "$reqs" "$allocs" \
      "$(python3 -c "print(round($allocs / max(1, $reqs), 2))")"
  done
done
