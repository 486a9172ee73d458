#!/usr/bin/env bash
# HTTP/2 cache hits: tern-edge against nginx (http2 + proxy_cache) on this
# machine, side by side in one run, with h2load (nghttp2-client).
#
#   bench/h2_bench.sh [rounds=3] [duration_s=10] [connections=10] [streams=10]
#
# Pinning as bench/hit_bench.sh: each cache server runs on CPU 0 (one event
# loop, one nginx worker), h2load (one thread) and the origin on CPU 1.
# Both caches get the same 1 KiB and 16 KiB objects (max-age=3600), warmed
# and checked to answer from cache before measuring. Two transports: TLS
# with ALPN h2 (what browsers speak) and cleartext h2 with prior knowledge.
# Load: connections x streams concurrent requests (default 10 x 10 = 100).
# Rounds interleave the servers. Reported: median requests/s, median mean
# latency (h2load gives no percentiles), median server CPU per request
# (user+system time of the server's processes over the run divided by its
# requests), and tern-edge's ratio to nginx. A run with failed or non-2xx
# requests fails the benchmark. Installs nginx-light and nghttp2-client
# from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
DURATION="${2:-10}"
CONNS="${3:-10}"
STREAMS="${4:-10}"

source bench/lib.sh
bench_setup h2bench nginx-light nghttp2-client openssl
ORIGIN_PORT=$(free_port)
TERN_PORT=$(free_port); TERN_TLS=$(free_port); TERN_ADMIN=$(free_port)
NGINX_PORT=$(free_port); NGINX_TLS=$(free_port)

mkdir -p "$WORK/www" "$WORK/origin" "$WORK/proxy/cache"
for kb in 1 16; do head -c $((kb * 1024)) /dev/urandom > "$WORK/www/obj${kb}k"; done
chmod 755 "$WORK" "$WORK/www" "$WORK/proxy"
chmod 644 "$WORK"/www/*
chmod 777 "$WORK/proxy/cache"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod 644 "$WORK/key.pem" "$WORK/cert.pem"
origin_nginx_conf "$ORIGIN_PORT" "$WORK/www" > "$WORK/origin/nginx.conf"
taskset -c 1 nginx -c "$WORK/origin/nginx.conf" -p "$WORK/origin" &
PIDS+=($!)

# ---- tern-edge: one event loop on CPU 0, h2c on the plain listener ----
taskset -c 0 build/edge/tern-edge --listen "127.0.0.1:$TERN_PORT" --admin_listen "127.0.0.1:$TERN_ADMIN" \
  --tls.listen "127.0.0.1:$TERN_TLS" --tls.cert "$WORK/cert.pem" --tls.key "$WORK/key.pem" \
  --server.h2c true --origin "http://127.0.0.1:$ORIGIN_PORT" --cache.dir "$WORK/tern" \
  --server.loops 1 --server.blocking_threads 1 --log.access false --log.level warn &
TERN_PID=$!
PIDS+=($TERN_PID)

# ---- nginx proxy_cache, HTTP/2 on both listeners: one worker on CPU 0 ----
{ nginx_main "$WORK/proxy" 0001; cat <<CONF
events { worker_connections 4096; }
http {
  access_log off;
  proxy_cache_path $WORK/proxy/cache keys_zone=c:64m max_size=1g;
  upstream o { server 127.0.0.1:$ORIGIN_PORT; keepalive 32; }
  server {
    listen 127.0.0.1:$NGINX_PORT http2;
    listen 127.0.0.1:$NGINX_TLS ssl http2;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    http2_max_concurrent_streams 128;
    keepalive_requests 1000000000;  # (the default, 1000, ends each connection early)
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

ticks() {  # server
  case "$1" in tern) cpu_ticks "$TERN_PID" ;; nginx) cpu_ticks "$NGINX_PID" ;; esac
}
HZ=$(getconf CLK_TCK)
url() {  # server transport size
  case "$1/$2" in
    tern/tls) echo "https://localhost:$TERN_TLS/obj$3k" ;;
    tern/h2c) echo "http://127.0.0.1:$TERN_PORT/obj$3k" ;;
    nginx/tls) echo "https://localhost:$NGINX_TLS/obj$3k" ;;
    nginx/h2c) echo "http://127.0.0.1:$NGINX_PORT/obj$3k" ;;
  esac
}

sleep 2
for s in tern nginx; do
  for t in tls h2c; do
    for kb in 1 16; do
      u=$(url $s $t $kb)
      opt=(--http2-prior-knowledge); [ "$t" = tls ] && opt=(--http2 -k)
      for i in 1 2 3; do curl -s "${opt[@]}" -o /dev/null "$u"; done
      head=$(curl -s "${opt[@]}" -D - -o /dev/null "$u" | tr -d '\r')
      echo "$head" | head -1 | grep -q '^HTTP/2 200' || { echo "$s/$t: not HTTP/2 200 for $u:" >&2; echo "$head" >&2; exit 1; }
      case "$s" in
        tern) echo "$head" | grep -qi '^cache-status: .*; hit' ;;
        nginx) echo "$head" | grep -qi '^x-cache: HIT' ;;
      esac || { echo "$s does not answer $u from cache:" >&2; echo "$head" >&2; exit 1; }
    done
  done
done

RESULTS="$WORK/results.txt"
for round in $(seq 1 "$ROUNDS"); do
  for t in tls h2c; do
    for kb in 1 16; do
      for s in tern nginx; do
        t0=$(ticks "$s")
        out=$(taskset -c 1 h2load -t1 -c"$CONNS" -m"$STREAMS" -D "$DURATION" "$(url $s $t $kb)" 2>&1)
        t1=$(ticks "$s")
        rps=$(echo "$out" | awk '/^finished in/ {print $4}')
        reqs=$(echo "$out" | awk '/^requests:/ {print $8}')
        failed=$(echo "$out" | awk '/^requests:/ {print $10 + $12 + $14}')
        non2xx=$(echo "$out" | awk '/^status codes:/ {print $5 + $7 + $9}')
        mean=$(echo "$out" | awk '/^time for request:/ {print $6}')
        rps=${rps:-0}; reqs=${reqs:-0}; failed=${failed:-1}; non2xx=${non2xx:-0}; mean=${mean:-0}
        cpu=$(python3 -c "print(round(($t1 - $t0) / $HZ * 1e6 / max(1, $reqs), 2))")
        echo "$round $t $kb $s $rps $mean $cpu $failed $non2xx" >> "$RESULTS"
        echo "round $round $t ${kb}KiB $s: $rps req/s, mean $mean, $cpu us CPU/request, failed $failed, non-2xx $non2xx" >&2
      done
    done
  done
done

python3 - "$RESULTS" "$ROUNDS" "$DURATION" "$CONNS" "$STREAMS" <<'PY'
import statistics, sys
path, rounds, duration, conns, streams = sys.argv[1:6]
def ms(v):
    for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit): return float(v[:-len(unit)]) * f
    return float(v)
data = {}
for line in open(path):
    r, t, kb, s, rps, mean, cpu, failed, non2xx = line.split()
    rps = float(rps.rstrip(","))
    data.setdefault((t, int(kb), s), []).append((rps, ms(mean), float(cpu), int(failed) + int(non2xx)))
print(f"\nHTTP/2 hit benchmark: {rounds} interleaved rounds x {duration}s, h2load -t1 -c{conns} "
      f"-m{streams}, servers on CPU 0, h2load on CPU 1 (medians over rounds; CPU = the server's "
      "user+system time per request)\n")
print(f"{'transport':>9} {'size':>6} {'server':>6} {'req/s':>10} {'mean ms':>8} {'CPU us/req':>11} {'errors':>7} {'vs nginx':>9}")
bad = False
for t in ("tls", "h2c"):
    for kb in (1, 16):
        base = statistics.median(x[0] for x in data[(t, kb, "nginx")])
        for s in ("tern", "nginx"):
            xs = data[(t, kb, s)]
            rps = statistics.median(x[0] for x in xs)
            mean = statistics.median(x[1] for x in xs)
            cpu = statistics.median(x[2] for x in xs)
            errors = sum(x[3] for x in xs)
            bad |= errors > 0
            print(f"{t:>9} {kb:>4}KiB {s:>6} {rps:>10.0f} {mean:>8.2f} {cpu:>11.2f} {errors:>7} {rps / base:>8.2f}x")
if bad:
    print("\nSome runs had failed or non-2xx requests: their figures do not count.")
    sys.exit(1)
PY
