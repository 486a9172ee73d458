# Shared by the shell benchmarks (sourced from the repository root).
#   bench_setup <name> <debian packages...>  installs what is missing, builds
#                                            tern-edge if needed, makes $WORK
#                                            and removes it (and every pid in
#                                            PIDS) on exit
#   free_port                                a free loopback TCP port
#   origin_nginx_conf <port> <dir>           an nginx origin serving <dir>
#                                            with Cache-Control max-age=3600,
#                                            one worker on CPU 1
#   nginx_main <dir> <cpu mask>              the lines every bench nginx starts
#                                            with: one worker pinned by the mask,
#                                            pid and error log in <dir>
#   nginx_cache_location                     the proxy_cache location of the
#                                            hit benchmarks (upstream "o",
#                                            zone "c", X-Cache: HIT on hits)
#   cpu_ticks <pid>                          user+system clock ticks of a
#                                            process, its children and theirs

bench_setup() {
  local name=$1
  shift
  local need=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p"); done
  if [ ${#need[@]} -gt 0 ]; then
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  [ -x build/edge/tern-edge ] || tools/build release >/dev/null
  WORK="$(mktemp -d "/tmp/tern-$name-XXXXXX")"
  PIDS=()
  trap bench_cleanup EXIT INT TERM
}

bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nginx_main() {
  cat <<CONF
worker_processes 1;
worker_cpu_affinity $2;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log;
CONF
}

origin_nginx_conf() {
  local port=$1 dir=$2
  nginx_main "$WORK/origin" 0010
  cat <<CONF
events { worker_connections 1024; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$port;
    root $dir;
    location / { add_header Cache-Control "max-age=3600"; }
  }
}
CONF
}

nginx_cache_location() {
  cat <<'CONF'
    location / {
      proxy_cache c;
      add_header X-Cache $upstream_cache_status;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://o;
    }
CONF
}

cpu_ticks() {
  local t=0 p children
  children=$(pgrep -P "$1" | tr '\n' ' ')
  for p in $1 $children $(for c in $children; do pgrep -P "$c"; done); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
