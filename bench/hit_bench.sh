#!/usr/bin/env bash
# Cache-hit throughput and latency: tern-edge against Varnish and nginx
# proxy_cache on this machine, side by side in one run.
#
#   bench/hit_bench.sh [rounds=3] [duration_s=10] [connections=64]
#
# Pinning: every cache server runs on CPU 0 (taskset), the load generator
# (wrk, one thread) on CPU 1, the origin (nginx) on CPU 1 as well; it is
# only touched during warm-up. Each server gets the same objects of 1 KiB,
# 16 KiB and 256 KiB (Cache-Control: max-age=3600), warmed before measuring.
# Rounds interleave the servers so that drift of the machine hits all alike.
# Reported: median requests/s and median p99 latency over the rounds, and
# the ratio of each server's requests/s to Varnish's. Installs varnish,
# nginx-light and wrk from Debian when missing.
# ACCESS_LOG=1 adds "tern+log": a second tern-edge writing the access log
# (every response, JSON lines to a file), to show what the log costs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
DURATION="${2:-10}"
CONNS="${3:-64}"

source bench/lib.sh
bench_setup hitbench varnish nginx-light wrk
ORIGIN_PORT=$(free_port); TERN_PORT=$(free_port); TERN_ADMIN=$(free_port)
VARNISH_PORT=$(free_port); NGINX_PORT=$(free_port)

# ---- origin: nginx serving static files ----
mkdir -p "$WORK/www" "$WORK/origin" "$WORK/proxy/cache"
for kb in 1 16 256; do head -c $((kb * 1024)) /dev/urandom > "$WORK/www/obj${kb}k"; done
# nginx workers run unprivileged: let them read the files and write the cache.
chmod 755 "$WORK" "$WORK/www" "$WORK/proxy"
chmod 644 "$WORK"/www/*
chmod 777 "$WORK/proxy/cache"
origin_nginx_conf "$ORIGIN_PORT" "$WORK/www" > "$WORK/origin/nginx.conf"
taskset -c 1 nginx -c "$WORK/origin/nginx.conf" -p "$WORK/origin" &
PIDS+=($!)

# ---- tern-edge: one event loop on CPU 0 ----
taskset -c 0 build/edge/tern-edge --listen "127.0.0.1:$TERN_PORT" --admin_listen "127.0.0.1:$TERN_ADMIN" \
  --origin "http://127.0.0.1:$ORIGIN_PORT" --cache.dir "$WORK/tern" --server.loops 1 \
  --server.blocking_threads 1 --log.access false --log.level warn &
PIDS+=($!)
SERVERS=(tern varnish nginx)
if [ "${ACCESS_LOG:-0}" = 1 ]; then
  TERNLOG_PORT=$(free_port); TERNLOG_ADMIN=$(free_port)
  taskset -c 0 build/edge/tern-edge --listen "127.0.0.1:$TERNLOG_PORT" --admin_listen "127.0.0.1:$TERNLOG_ADMIN" \
    --origin "http://127.0.0.1:$ORIGIN_PORT" --cache.dir "$WORK/ternlog" --server.loops 1 \
    --server.blocking_threads 1 --log.access true --log.access_file "$WORK/access.log" --log.level warn &
  PIDS+=($!)
  SERVERS=(tern tern+log varnish nginx)
fi

# ---- Varnish: malloc storage on CPU 0 ----
taskset -c 0 varnishd -F -n "$WORK/varnish" -a "127.0.0.1:$VARNISH_PORT" -b "127.0.0.1:$ORIGIN_PORT" \
  -s malloc,512m -p thread_pools=1 >"$WORK/varnish.log" 2>&1 &
PIDS+=($!)

# ---- nginx proxy_cache: one worker on CPU 0 ----
cat > "$WORK/proxy/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity 0001;
daemon off;
pid $WORK/proxy/nginx.pid;
error_log $WORK/proxy/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  proxy_cache_path $WORK/proxy/cache keys_zone=c:64m max_size=1g;
  upstream o { server 127.0.0.1:$ORIGIN_PORT; keepalive 32; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_cache c;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://o;
    }
  }
}
CONF
taskset -c 0 nginx -c "$WORK/proxy/nginx.conf" -p "$WORK/proxy" &
PIDS+=($!)

sleep 2
declare -A PORT=([tern]=$TERN_PORT [varnish]=$VARNISH_PORT [nginx]=$NGINX_PORT)
[ -n "${TERNLOG_PORT:-}" ] && PORT[tern+log]=$TERNLOG_PORT
for s in "${SERVERS[@]}"; do
  for kb in 1 16 256; do
    for i in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:${PORT[$s]}/obj${kb}k"; done
    status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$s]}/obj${kb}k")
    [ "$status" = 200 ] || { echo "$s did not serve /obj${kb}k ($status)" >&2; exit 1; }
  done
done
curl -s -D - -o /dev/null "http://127.0.0.1:$TERN_PORT/obj1k" | grep -i '^cache-status' >&2 || true

RESULTS="$WORK/results.txt"
for round in $(seq 1 "$ROUNDS"); do
  for kb in 1 16 256; do
    for s in "${SERVERS[@]}"; do
      out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:${PORT[$s]}/obj${kb}k")
      rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
      p99=$(echo "$out" | awk '$1=="99%" {print $2}')
      echo "$round $kb $s $rps $p99" >> "$RESULTS"
      echo "round $round ${kb}KiB $s: $rps req/s, p99 $p99" >&2
    done
  done
done

python3 - "$RESULTS" "$ROUNDS" "$DURATION" "$CONNS" <<'PY'
import statistics, sys
path, rounds, duration, conns = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def ms(v):
    v = v.strip()
    for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit): return float(v[:-len(unit)]) * f
    return float(v)
data = {}
for line in open(path):
    r, kb, s, rps, p99 = line.split()
    data.setdefault((int(kb), s), []).append((float(rps), ms(p99)))
print(f"\nHit benchmark: {rounds} interleaved rounds x {duration}s, wrk -t1 -c{conns}, "
      "servers on CPU 0, wrk on CPU 1 (median over rounds)\n")
print(f"{'size':>7} {'server':>8} {'req/s':>10} {'p99 ms':>8} {'vs varnish':>11}")
for kb in (1, 16, 256):
    base = statistics.median(x[0] for x in data[(kb, "varnish")])
    for s in ("tern", "tern+log", "varnish", "nginx"):
        if (kb, s) not in data: continue
        rps = statistics.median(x[0] for x in data[(kb, s)])
        p99 = statistics.median(x[1] for x in data[(kb, s)])
        print(f"{kb:>5}KiB {s:>8} {rps:>10.0f} {p99:>8.2f} {rps / base:>10.2f}x")
PY
