#!/usr/bin/env bash
# Cache-hit throughput of coral against nginx proxy_cache and against a bare
# Go net/http handler writing the same bytes from memory (as fast as Go
# serves bytes), measured in one run on this machine.
#
# Each server is pinned to one core (SERVER_CPU) with taskset, Go ones with
# GOMAXPROCS=1 and nginx with one worker (sendfile on, as Debian ships it);
# wrk runs on another core (WRK_CPU). For a 1 KiB and a 1 MiB object, the
# servers take turns in ROUNDS alternating rounds of DURATION each; the
# figures are the medians. coral's RSS is sampled during its runs.
# Last line:
#   coral_1k=… nginx_1k=… go_1k=… coral_vs_go_1k=… coral_1m_MBps=… nginx_1m_MBps=… ratio_1m=…
# (1k figures in requests/s, 1m figures in MB/s = 10^6 bytes/s).
#
#   bash test/bench/cachehit/run.sh      (ROUNDS=3 DURATION=5s CONNS=64)
#
# Everything else the machine runs competes for the same cores: compare the
# ratios of one run, not absolute figures across runs. The cpu_us_per_req
# line (each server's user+system CPU per request, medians) holds better
# than requests/s on a loaded machine: go_vs_coral_cpu_1k is the 1 KiB
# ratio a server with a core of its own would reach, nginx_vs_coral_cpu_1m
# the 1 MiB one (where wrk's core, copying the bytes in, is the limit).
set -euo pipefail
cd "$(dirname "$0")/../../.."
export PATH=$PATH:/usr/local/go/bin

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
ORIGIN_PORT=${ORIGIN_PORT:-18001}
NGINX_PORT=${NGINX_PORT:-18002}
GO_PORT=${GO_PORT:-18003}
CORAL_PORT=${CORAL_PORT:-18080}
CONTROL_PORT=${CONTROL_PORT:-18081}

for c in wrk nginx taskset; do
  command -v "$c" >/dev/null || { echo "cachehit: $c is missing (make deps installs it as root)" >&2; exit 1; }
done
# Build unless a binary is named: a bin/coral left from an older checkout
# would measure old code.
if [ -z "${CORAL_BIN:-}" ]; then
	make build >/dev/null
	CORAL_BIN=bin/coral
fi

work=$(mktemp -d /tmp/coral-cachehit.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www" "$work/cache" "$work/coral"
# nginx workers run as an unprivileged user: let them read the site and
# write the cache.
chmod 755 "$work" "$work/www"
chmod 777 "$work/cache"
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 > "$work/www/1k.txt"
head -c 1048576 /dev/urandom > "$work/www/1m.bin"

cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  proxy_cache_path $work/cache keys_zone=bench:10m max_size=100m;
  server {
    listen 127.0.0.1:$ORIGIN_PORT;
    root $work/www;
    location / { add_header Cache-Control "public, max-age=3600"; }
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://127.0.0.1:$ORIGIN_PORT;
      proxy_cache bench;
      proxy_cache_valid 200 1h;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      add_header X-Cache-Status \$upstream_cache_status;
    }
  }
}
CONF
# One worker for both servers: the origin only answers the warm-up.
taskset -c "$SERVER_CPU" nginx -c "$work/nginx.conf" -p "$work"

go build -o "$work/gohandler" ./test/bench/cachehit/gohandler
GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$work/gohandler" -listen "127.0.0.1:$GO_PORT" -dir "$work/www" &
go_pid=$!
pids+=("$go_pid")

cat > "$work/coral.toml" <<CONF
data_dir = "$work/coral"
[http]
listen = "127.0.0.1:$CORAL_PORT"
[control]
listen = "127.0.0.1:$CONTROL_PORT"
[dns]
listen = ""
[cache]
allow_private_origins = true
[p2p]
listen = ["/ip4/127.0.0.1/tcp/0"]
mdns = false
nat_port_map = false
[log]
level = "warn"
CONF
GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$CORAL_BIN" serve -config "$work/coral.toml" > "$work/coral.log" 2>&1 &
coral_pid=$!
pids+=("$coral_pid")

host="127.0.0.1.$ORIGIN_PORT.localhost"
for i in $(seq 1 100); do
  curl -sf -o /dev/null -H "Host: $host" "http://127.0.0.1:$CORAL_PORT/1k.txt" && break
  sleep 0.1 # waiting for coral to start listening
done
header_of() { tr -d '\r' | awk -F': ' -v h="$1" 'tolower($1)==h{print $2}'; }
for f in 1k.txt 1m.bin; do
  curl -sf -o /dev/null -H "Host: $host" "http://127.0.0.1:$CORAL_PORT/$f"
  curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/$f" || { echo "cachehit: nginx does not answer"; cat "$work/error.log"; exit 1; }
  # Both must now answer from their caches, with the whole body.
  state=$(curl -s -D - -o "$work/got" -H "Host: $host" "http://127.0.0.1:$CORAL_PORT/$f" | header_of x-coral-cache)
  [ "$state" = HIT ] && cmp -s "$work/got" "$work/www/$f" || { echo "cachehit: coral does not answer $f from cache (X-Coral-Cache: $state)"; cat "$work/coral.log"; exit 1; }
  nstate=$(curl -s -D - -o "$work/got" "http://127.0.0.1:$NGINX_PORT/$f" | header_of x-cache-status)
  [ "$nstate" = HIT ] && cmp -s "$work/got" "$work/www/$f" || { echo "cachehit: nginx does not answer $f from cache (X-Cache-Status: $nstate)"; exit 1; }
  curl -sf -o "$work/got" "http://127.0.0.1:$GO_PORT/$f" && cmp -s "$work/got" "$work/www/$f" || { echo "cachehit: gohandler does not serve $f"; exit 1; }
done

rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
idle_rss=$(rss_kib "$coral_pid")
peak_rss=$idle_rss

# cpu_ticks PID...: user+system CPU the processes used so far, in clock ticks.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do
    t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0) ))
  done
  echo "$t"
}
# server_pids SERVER: the processes serving (nginx: master and workers).
server_pids() {
  case $1 in
    coral) echo "$coral_pid" ;;
    go) echo "$go_pid" ;;
    nginx) local m; m=$(cat "$work/nginx.pid"); echo "$m" $(pgrep -P "$m") ;;
  esac
}
tick_us=$(( 1000000 / $(getconf CLK_TCK) ))

# run SERVER FILE: one wrk run; prints requests/s, and appends the server's
# CPU microseconds per request to $work/cpu-SERVER-FILE (robust to other load on
# the machine, unlike requests/s).
run() {
  local port hdr=() before
  case $1 in
    coral) port=$CORAL_PORT; hdr=(-H "Host: $host") ;;
    nginx) port=$NGINX_PORT ;;
    go) port=$GO_PORT ;;
  esac
  before=$(cpu_ticks $(server_pids "$1"))
  taskset -c "$WRK_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" "${hdr[@]}" "http://127.0.0.1:$port/$2" > "$work/wrk.txt" &
  local wrk_pid=$!
  if [ "$1" = coral ]; then
    while kill -0 "$wrk_pid" 2>/dev/null; do
      peak_rss=$(( $(rss_kib "$coral_pid") > peak_rss ? $(rss_kib "$coral_pid") : peak_rss ))
      sleep 0.5 # RSS sampling interval while wrk runs, not synchronisation
    done
  fi
  wait "$wrk_pid"
  if grep -q 'Non-2xx' "$work/wrk.txt"; then echo "cachehit: $1 $2 gave errors" >&2; cat "$work/wrk.txt" >&2; exit 1; fi
  local used reqs
  used=$(( $(cpu_ticks $(server_pids "$1")) - before ))
  reqs=$(awk '/requests in/{print $1}' "$work/wrk.txt")
  awk -v t="$used" -v us="$tick_us" -v n="$reqs" 'BEGIN{ if (n>0) printf "%.2f ", t*us/n }' >> "$work/cpu-$1-$2"
  awk '/Requests\/sec/{print $2}' "$work/wrk.txt"
}

declare -A results
for round in $(seq 1 "$ROUNDS"); do
  for f in 1k.txt 1m.bin; do
    # Alternate the order each round so no server always follows another.
    order=(coral nginx go)
    [ $((round % 2)) = 0 ] && order=(go nginx coral)
    for s in "${order[@]}"; do
      results[$s/$f]+="$(run "$s" "$f") "
    done
  done
  echo "round $round: coral_1k ${results[coral/1k.txt]}| nginx_1k ${results[nginx/1k.txt]}| go_1k ${results[go/1k.txt]}| coral_1m ${results[coral/1m.bin]}| nginx_1m ${results[nginx/1m.bin]}| go_1m ${results[go/1m.bin]}"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
mbps() { awk -v r="$1" 'BEGIN{ printf "%.0f", r*1048576/1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "nan" }'; }
coral_1k=$(median <<< "${results[coral/1k.txt]}")
nginx_1k=$(median <<< "${results[nginx/1k.txt]}")
go_1k=$(median <<< "${results[go/1k.txt]}")
coral_1m=$(mbps "$(median <<< "${results[coral/1m.bin]}")")
nginx_1m=$(mbps "$(median <<< "${results[nginx/1m.bin]}")")
go_1m=$(mbps "$(median <<< "${results[go/1m.bin]}")")

cpu_of() { median < "$work/cpu-$1-$2"; }
coral_cpu_1k=$(cpu_of coral 1k.txt)
go_cpu_1k=$(cpu_of go 1k.txt)
coral_cpu_1m=$(cpu_of coral 1m.bin)
nginx_cpu_1m=$(cpu_of nginx 1m.bin)
echo "cpu_us_per_req: coral_1k=$coral_cpu_1k nginx_1k=$(cpu_of nginx 1k.txt) go_1k=$go_cpu_1k go_vs_coral_cpu_1k=$(ratio "$go_cpu_1k" "$coral_cpu_1k") coral_1m=$coral_cpu_1m nginx_1m=$nginx_cpu_1m go_1m=$(cpu_of go 1m.bin) nginx_vs_coral_cpu_1m=$(ratio "$nginx_cpu_1m" "$coral_cpu_1m")"
echo "setup: servers on cpu $SERVER_CPU (GOMAXPROCS=1, nginx 1 worker, sendfile on), wrk -t1 -c$CONNS on cpu $WRK_CPU, $ROUNDS rounds of $DURATION"
echo "go_1m_MBps=$go_1m coral_vs_nginx_1k=$(ratio "$coral_1k" "$nginx_1k")"
echo "coral_rss_idle_mib=$((idle_rss / 1024)) coral_rss_load_mib=$((peak_rss / 1024))"
echo "coral_1k=$coral_1k nginx_1k=$nginx_1k go_1k=$go_1k coral_vs_go_1k=$(ratio "$coral_1k" "$go_1k") coral_1m_MBps=$coral_1m nginx_1m_MBps=$nginx_1m ratio_1m=$(ratio "$coral_1m" "$nginx_1m")"
