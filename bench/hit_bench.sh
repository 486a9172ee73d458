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
# Reported: median requests/s, median p99 latency and median server CPU per
# request (user+system time of the server's processes over the run divided by
# its requests: wrk saturates its own core with small objects, so req/s alone
# understates a server) over the rounds, and the ratio of each server's
# requests/s to Varnish's. Each run is checked: no socket errors, no non-2xx
# answers, and before measuring every cache is seen answering from cache
# (Cache-Status hit, Varnish's Age, nginx's X-Cache HIT). "nginx-files" is
# nginx serving the same files from disk with sendfile, no cache: the
# ceiling of this machine for a server on one core. Installs varnish,
# nginx-light and wrk from Debian when missing.
# SIZES (KiB, default "1 16 256 4096") picks the objects.
# TERN_B="name:arguments" adds a second tern-edge, started with those extra
# arguments, as server "name": an A/B of one setting in the same run, e.g.
# TERN_B="tern-nophase:--server.phase_metrics false".
# ACCESS_LOG=1 is TERN_B for "tern+log": a second tern-edge writing the access log
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
SIZES="${SIZES:-1 16 256 4096}"
for kb in $SIZES; do head -c $((kb * 1024)) /dev/urandom > "$WORK/www/obj${kb}k"; done
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
TERN_PID=$!
PIDS+=($TERN_PID)
SERVERS=(tern varnish nginx nginx-files)
if [ "${ACCESS_LOG:-0}" = 1 ]; then
  TERN_B="tern+log:--log.access true --log.access_file $WORK/access.log"
fi
if [ -n "${TERN_B:-}" ]; then
  B_NAME="${TERN_B%%:*}"; B_ARGS="${TERN_B#*:}"
  B_PORT=$(free_port); B_ADMIN=$(free_port)
  # shellcheck disable=SC2086  # the extra arguments are words
  taskset -c 0 build/edge/tern-edge --listen "127.0.0.1:$B_PORT" --admin_listen "127.0.0.1:$B_ADMIN" \
    --origin "http://127.0.0.1:$ORIGIN_PORT" --cache.dir "$WORK/tern-b" --server.loops 1 \
    --server.blocking_threads 1 --log.access false --log.level warn $B_ARGS &
  B_PID=$!
  PIDS+=($B_PID)
  SERVERS=(tern "$B_NAME" varnish nginx nginx-files)
fi

# ---- Varnish: malloc storage on CPU 0 ----
taskset -c 0 varnishd -F -n "$WORK/varnish" -a "127.0.0.1:$VARNISH_PORT" -b "127.0.0.1:$ORIGIN_PORT" \
  -s malloc,512m -p thread_pools=1 >"$WORK/varnish.log" 2>&1 &
VARNISH_PID=$!
PIDS+=($VARNISH_PID)

# ---- nginx proxy_cache: one worker on CPU 0 ----
{ nginx_main "$WORK/proxy" 0001; cat <<CONF
events { worker_connections 4096; }
http {
  access_log off;
  proxy_cache_path $WORK/proxy/cache keys_zone=c:64m max_size=1g;
  upstream o { server 127.0.0.1:$ORIGIN_PORT; keepalive 32; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
CONF
nginx_cache_location
cat <<CONF
  }
}
CONF
} > "$WORK/proxy/nginx.conf"
taskset -c 0 nginx -c "$WORK/proxy/nginx.conf" -p "$WORK/proxy" &
NGINX_PID=$!
PIDS+=($NGINX_PID)

# ---- nginx serving the files (sendfile, no cache): the ceiling, CPU 0 ----
FILES_PORT=$(free_port)
mkdir -p "$WORK/files"
{ nginx_main "$WORK/files" 0001; cat <<CONF
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  server { listen 127.0.0.1:$FILES_PORT; root $WORK/www; }
}
CONF
} > "$WORK/files/nginx.conf"
taskset -c 0 nginx -c "$WORK/files/nginx.conf" -p "$WORK/files" &
FILES_PID=$!
PIDS+=($FILES_PID)

# A server's CPU time: its processes, their children and theirs.
ticks() {
  case "$1" in
    tern) cpu_ticks "$TERN_PID" ;;
    varnish) cpu_ticks "$VARNISH_PID" ;;
    nginx) cpu_ticks "$NGINX_PID" ;;
    nginx-files) cpu_ticks "$FILES_PID" ;;
    "${B_NAME:-}") cpu_ticks "$B_PID" ;;
  esac
}
HZ=$(getconf CLK_TCK)

sleep 2
declare -A PORT=([tern]=$TERN_PORT [varnish]=$VARNISH_PORT [nginx]=$NGINX_PORT [nginx-files]=$FILES_PORT)
[ -n "${B_PORT:-}" ] && PORT[$B_NAME]=$B_PORT
for s in "${SERVERS[@]}"; do
  for kb in $SIZES; do
    for i in 1 2 3; do curl -s -o /dev/null "http://127.0.0.1:${PORT[$s]}/obj${kb}k"; done
    status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$s]}/obj${kb}k")
    [ "$status" = 200 ] || { echo "$s did not serve /obj${kb}k ($status)" >&2; exit 1; }
  done
done
# Every cache answers from cache now (else the run would measure its origin).
for kb in $SIZES; do
  for s in "${SERVERS[@]}"; do
    head=$(curl -s -D - -o /dev/null "http://127.0.0.1:${PORT[$s]}/obj${kb}k" | tr -d '\r')
    case "$s" in
      tern*) echo "$head" | grep -qi '^cache-status: .*; hit' ;;
      varnish) echo "$head" | grep -qiE '^age: [1-9]|^x-varnish: [0-9]+ [0-9]+' ;;
      nginx) echo "$head" | grep -qi '^x-cache: HIT' ;;
      *) true ;;
    esac || { echo "$s does not answer /obj${kb}k from cache:" >&2; echo "$head" >&2; exit 1; }
  done
done

RESULTS="$WORK/results.txt"
for round in $(seq 1 "$ROUNDS"); do
  for kb in $SIZES; do
    for s in "${SERVERS[@]}"; do
      t0=$(ticks "$s")
      out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:${PORT[$s]}/obj${kb}k")
      t1=$(ticks "$s")
      rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
      p99=$(echo "$out" | awk '$1=="99%" {print $2}')
      reqs=$(echo "$out" | awk '/requests in/ {print $1}')
      bad=$(echo "$out" | awk '/Non-2xx or 3xx responses/ {print $NF}')
      errs=$(echo "$out" | awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}')
      bad=${bad:-0}; errs=${errs:-0}; reqs=${reqs:-0}
      cpu=$(python3 -c "print(round(($t1 - $t0) / $HZ * 1e6 / max(1, $reqs), 2))")
      echo "$round $kb $s $rps $p99 $cpu $bad $errs" >> "$RESULTS"
      echo "round $round ${kb}KiB $s: $rps req/s, p99 $p99, $cpu us CPU/request, non-2xx $bad, socket errors $errs" >&2
      if [ "$bad" != 0 ] || [ "$errs" != 0 ]; then
        echo "$s: $bad non-2xx answers and $errs socket errors in this run" >&2
      fi
    done
  done
done

python3 - "$RESULTS" "$ROUNDS" "$DURATION" "$CONNS" "${SERVERS[*]}" <<'PY'
import statistics, sys
path, rounds, duration, conns = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
servers = sys.argv[5].split()
def ms(v):
    v = v.strip()
    for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit): return float(v[:-len(unit)]) * f
    return float(v)
data = {}
for line in open(path):
    r, kb, s, rps, p99, cpu, bad, errs = line.split()
    data.setdefault((int(kb), s), []).append((float(rps), ms(p99), float(cpu), int(bad), int(errs)))
print(f"\nHit benchmark: {rounds} interleaved rounds x {duration}s, wrk -t1 -c{conns}, "
      "servers on CPU 0, wrk on CPU 1 (medians over rounds; CPU = the server's user+system "
      "time per request)\n")
print(f"{'size':>7} {'server':>11} {'req/s':>10} {'p99 ms':>8} {'CPU us/req':>11} {'errors':>7} {'vs varnish':>11}")
failed = False
for kb in sorted({k for k, _ in data}):
    base = statistics.median(x[0] for x in data[(kb, "varnish")])
    for s in servers:
        if (kb, s) not in data: continue
        xs = data[(kb, s)]
        rps = statistics.median(x[0] for x in xs)
        p99 = statistics.median(x[1] for x in xs)
        cpu = statistics.median(x[2] for x in xs)
        errors = sum(x[3] + x[4] for x in xs)
        failed |= errors > 0
        print(f"{kb:>5}KiB {s:>11} {rps:>10.0f} {p99:>8.2f} {cpu:>11.2f} {errors:>7} {rps / base:>10.2f}x")
if failed:
    print("\nSome runs had non-2xx answers or socket errors: their figures do not count.")
    sys.exit(1)
PY
