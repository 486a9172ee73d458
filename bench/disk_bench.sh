#!/usr/bin/env bash
# Working-set benchmark: a cache much bigger than the memory tier.
# tern-edge (memory tier 64 MiB, disk tier 4 GiB) against nginx proxy_cache
# (max_size 4g), side by side in one run, on OBJECTS distinct 16 KiB objects
# (/16k.bin?i=N: one file at the origin, a distinct cache key per N).
#
#   bench/disk_bench.sh [objects=50000] [duration_s=10] [rounds=3] [connections=64]
#
# Phases, for each server: fill (FILL_S seconds, default 10, of objects
# never asked before, 8 connections: a miss and a store each), populate
# (the working set stored, not measured), then random hits over the working
# set, uniform and Zipf (s=0.99), with -c connections. Rounds interleave the servers. Reported per phase: median
# requests/s, p99 latency, and server CPU per request (user+system time of
# the server's processes over the phase, divided by its requests), and the
# block devices' reads over the phase per request (disk KiB/req).
# Pinning: each cache server on CPU 0 (taskset; tern-edge with one event
# loop and one blocking thread, nginx with one worker); wrk (one thread)
# and the origin (nginx) on CPU 1. Both caches' files fit in the page cache;
# where the host reclaims idle page cache (a VM whose kernel runs a DAMON
# pageout scheme, for one) part of the hits read the disk, and the disk
# column says how much: compare runs only where it is alike.
# Installs nginx-light and wrk from Debian when missing.
# TERN_EXTRA_ARGS: more tern-edge flags (a variant to compare).
# PERF_DIR=dir: the first round of each tern-edge phase is also recorded
# with perf (dir/tern-<phase>.data; needs linux-perf). PERF_CALLGRAPH: perf's
# call-graph option (default -g; "--call-graph dwarf" where frame pointers are
# missing).
# NGINX_SENDFILE=on: nginx sends cached bodies with sendfile(2), as Debian's
# stock nginx.conf has it (nginx's own default, used otherwise, is off).
set -euo pipefail
cd "$(dirname "$0")/.."
OBJECTS="${1:-50000}"
DURATION="${2:-10}"
ROUNDS="${3:-3}"
CONNS="${4:-64}"

source bench/lib.sh
bench_setup diskbench nginx-light wrk
ORIGIN_PORT=$(free_port); TERN_PORT=$(free_port); TERN_ADMIN=$(free_port); NGINX_PORT=$(free_port)

# ---- origin: nginx serving one static file under any query ----
mkdir -p "$WORK/www" "$WORK/origin" "$WORK/proxy/cache"
head -c 16384 /dev/urandom > "$WORK/www/16k.bin"
chmod 755 "$WORK" "$WORK/www" "$WORK/proxy"
chmod 644 "$WORK"/www/*
chmod 777 "$WORK/proxy/cache"
origin_nginx_conf "$ORIGIN_PORT" "$WORK/www" > "$WORK/origin/nginx.conf"
taskset -c 1 nginx -c "$WORK/origin/nginx.conf" -p "$WORK/origin" &
PIDS+=($!)

# ---- tern-edge: one event loop on CPU 0, memory tier far below the set ----
taskset -c 0 build/edge/tern-edge --listen "127.0.0.1:$TERN_PORT" --admin_listen "127.0.0.1:$TERN_ADMIN" \
  --origin "http://127.0.0.1:$ORIGIN_PORT" --cache.dir "$WORK/tern" --server.loops 1 \
  --server.blocking_threads 1 --cache.memory_budget 64MiB --cache.disk_budget 4GiB \
  --log.access false --log.level warn ${TERN_EXTRA_ARGS:-} &
TERN_PID=$!
PIDS+=($TERN_PID)

# ---- nginx proxy_cache: one worker on CPU 0 ----
{ nginx_main "$WORK/proxy" 0001; cat <<CONF
events { worker_connections 4096; }
http {
  access_log off;
  sendfile ${NGINX_SENDFILE:-off};
  proxy_cache_path $WORK/proxy/cache levels=1:2 keys_zone=c:64m max_size=4g inactive=1h;
  upstream o { server 127.0.0.1:$ORIGIN_PORT; keepalive 32; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_cache c;
      proxy_cache_valid 200 1h;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://o;
    }
  }
}
CONF
} > "$WORK/proxy/nginx.conf"
taskset -c 0 nginx -c "$WORK/proxy/nginx.conf" -p "$WORK/proxy" &
NGINX_MASTER=$!
PIDS+=($NGINX_MASTER)

sleep 2
declare -A PORT=([tern]=$TERN_PORT [nginx]=$NGINX_PORT)
for s in tern nginx; do
  status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$s]}/16k.bin?i=warm")
  [ "$status" = 200 ] || { echo "$s did not answer ($status)" >&2; exit 1; }
done

# CPU ticks (user+system) of a server: tern-edge's process, or nginx's
# master and workers.
ticks() {
  if [ "$1" = tern ]; then cpu_ticks "$TERN_PID"; else cpu_ticks "$NGINX_MASTER"; fi
}
HZ=$(getconf CLK_TCK)
# Sectors read by all block devices so far.
sectors_read() { cat /sys/block/*/stat 2>/dev/null | awk '{s += $3} END {print s + 0}'; }

RESULTS="$WORK/results.txt"
FILL_S="${FILL_S:-10}"
# run <server> <phase> <mode> <connections> <duration> [objects] [key]
run() {
  local s=$1 phase=$2 mode=$3 conns=$4 dur=$5 objects=${6:-$OBJECTS} key=${7:-i}
  local t0 t1 out
  t0=$(ticks "$s")
  local d0 d1
  d0=$(sectors_read)
  local perf_pid=""
  if [ -n "${PERF_DIR:-}" ] && [ "$s" = tern ] && [ "$round" = 1 ] && [ "$phase" != populate ]; then
    mkdir -p "$PERF_DIR"
    perf record -q -F 999 ${PERF_CALLGRAPH:--g} -p "$TERN_PID" -o "$PERF_DIR/tern-$phase.data" -- sleep "$dur" \
      >/dev/null 2>&1 &
    perf_pid=$!
  fi
  out=$(MODE=$mode OBJECTS=$objects KEY=$key taskset -c 1 wrk -t1 -c"$conns" -d"${dur}s" --latency \
    -s bench/workingset.lua "http://127.0.0.1:${PORT[$s]}" 2>&1) || { echo "wrk failed: $out" >&2; exit 1; }
  t1=$(ticks "$s")
  d1=$(sectors_read)
  [ -z "$perf_pid" ] || wait "$perf_pid" || true
  local rps p99 reqs bad
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  bad=$(echo "$out" | awk '/^lua:/ {print $5}')
  local cpu_us disk_kib
  cpu_us=$(python3 -c "print(round(($t1 - $t0) / $HZ * 1e6 / max(1, $reqs), 1))")
  disk_kib=$(python3 -c "print(round(($d1 - $d0) * 512 / 1024 / max(1, $reqs), 2))")
  [ "$phase" = populate ] || echo "$round $phase $s $rps $p99 $cpu_us $disk_kib $bad" >> "$RESULTS"
  echo "round $round $phase $s: $rps req/s, p99 $p99, $cpu_us us CPU/request," \
    "$disk_kib KiB/request from disk, not-200 $bad" >&2
  LAST_RPS=$rps
}

for round in $(seq 1 "$ROUNDS"); do
  for s in tern nginx; do
    if [ "$round" = 1 ]; then
      # Fill rate on keys of their own, then the working set stored (in
      # order, wrapping: long enough for every object at the fill rate).
      run "$s" fill fill 8 "$FILL_S" 100000000 f
      populate_s=$(python3 -c "import math; print(math.ceil($OBJECTS / max(1.0, 0.7 * $LAST_RPS)) + 2)")
      run "$s" populate fill 8 "$populate_s"
    fi
    run "$s" uniform uniform "$CONNS" "$DURATION"
    run "$s" zipf zipf "$CONNS" "$DURATION"
  done
done
du -sh "$WORK/tern" "$WORK/proxy/cache" >&2 || true

python3 - "$RESULTS" "$OBJECTS" "$ROUNDS" "$DURATION" "$CONNS" "${NGINX_SENDFILE:-off}" <<'PY'
import statistics, sys
path, objects, rounds, duration, conns, nginx_sendfile = sys.argv[1:7]
def ms(v):
    v = v.strip()
    for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit): return float(v[:-len(unit)]) * f
    return float(v)
data = {}
for line in open(path):
    r, phase, s, rps, p99, cpu, disk, *bad = line.split()
    data.setdefault((phase, s), []).append(
        (float(rps), ms(p99), float(cpu), int(bad[0]) if bad else 0, float(disk)))
print(f"\nWorking-set benchmark: {objects} objects of 16 KiB, tern-edge memory tier 64 MiB + "
      f"disk 4 GiB, nginx proxy_cache 4g (sendfile {nginx_sendfile}); fill once with 8 connections, then {rounds} "
      f"interleaved rounds x {duration}s of hits, wrk -t1 -c{conns}; servers on CPU 0, "
      "wrk and origin on CPU 1 (medians over rounds)\n")
print(f"{'phase':>8} {'server':>7} {'req/s':>9} {'p99 ms':>8} {'CPU us/req':>11} "
      f"{'disk KiB/req':>13} {'not-200':>8} {'req/s vs nginx':>15}")
for phase in ("fill", "uniform", "zipf"):
    base = statistics.median(x[0] for x in data[(phase, "nginx")])
    for s in ("tern", "nginx"):
        xs = data[(phase, s)]
        rps = statistics.median(x[0] for x in xs)
        print(f"{phase:>8} {s:>7} {rps:>9.0f} {statistics.median(x[1] for x in xs):>8.2f} "
              f"{statistics.median(x[2] for x in xs):>11.1f} "
              f"{statistics.median(x[4] for x in xs):>13.2f} {sum(x[3] for x in xs):>8} "
              f"{rps / base:>14.2f}x")
PY
