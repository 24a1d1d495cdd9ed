#!/usr/bin/env bash
# Cache-hit throughput of coral against nginx proxy_cache, measured in the
# same run on this machine (the machine is shared and noisy: compare the
# ratio, not the absolute figures).
#
# One nginx serves the origin (a 1 KiB object, cacheable for an hour) and a
# proxy_cache in front of it; coral proxies the same origin. Both are warmed,
# then wrk drives each for DURATION with CONNS connections. Also prints coral's
# RSS idle and under load. Last line: coral_rps=… nginx_rps=… ratio=…
#
#   bash test/bench/cachehit/run.sh            (DURATION=10s CONNS=64 THREADS=2)
#
# nginx gets one worker per core (NGINX_WORKERS=auto), as coral's Go runtime
# uses every core: the ratio compares the two on the same CPUs.
set -euo pipefail
cd "$(dirname "$0")/../../.."

DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ORIGIN_PORT=${ORIGIN_PORT:-18001}
NGINX_PORT=${NGINX_PORT:-18002}
CORAL_PORT=${CORAL_PORT:-18080}
CONTROL_PORT=${CONTROL_PORT:-18081}
NGINX_WORKERS=${NGINX_WORKERS:-auto}

for c in wrk nginx; do
  command -v "$c" >/dev/null || { echo "cachehit: $c is missing (make deps installs it as root)" >&2; exit 1; }
done
[ -x bin/coral ] || make build >/dev/null

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

cat > "$work/nginx.conf" <<CONF
worker_processes $NGINX_WORKERS;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
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
nginx -c "$work/nginx.conf" -p "$work"

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
bin/coral serve -config "$work/coral.toml" > "$work/coral.log" 2>&1 &
coral_pid=$!
pids+=("$coral_pid")

host="127.0.0.1.$ORIGIN_PORT.localhost"
for i in $(seq 1 100); do
  curl -sf -o /dev/null -H "Host: $host" "http://127.0.0.1:$CORAL_PORT/1k.txt" && break
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/1k.txt" || { echo "cachehit: nginx does not answer"; cat "$work/error.log"; exit 1; }
# Both must now answer from their caches.
state=$(curl -s -D - -o /dev/null -H "Host: $host" "http://127.0.0.1:$CORAL_PORT/1k.txt" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-coral-cache"{print $2}')
[ "$state" = HIT ] || { echo "cachehit: coral does not answer from cache (X-Coral-Cache: $state)"; cat "$work/coral.log"; exit 1; }
nstate=$(curl -s -D - -o /dev/null "http://127.0.0.1:$NGINX_PORT/1k.txt" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache-status"{print $2}')
[ "$nstate" = HIT ] || { echo "cachehit: nginx does not answer from cache (X-Cache-Status: $nstate)"; cat "$work/error.log"; exit 1; }

rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
idle_rss=$(rss_kib "$coral_pid")

rps() { awk '/Requests\/sec/{print $2}'; }
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -H "Host: $host" "http://127.0.0.1:$CORAL_PORT/1k.txt" > "$work/wrk-coral.txt" &
wrk_pid=$!
sleep 2 # sample RSS in the middle of the load, not as synchronisation
load_rss=$(rss_kib "$coral_pid")
wait "$wrk_pid"
coral_rps=$(rps < "$work/wrk-coral.txt")
nginx_rps=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$NGINX_PORT/1k.txt" | rps)

echo "coral: $(grep -E 'Latency|Requests/sec' "$work/wrk-coral.txt" | tr -s ' ' | tr '\n' ';')"
echo "nginx: workers=$NGINX_WORKERS"
echo "coral_rss_idle_mib=$((idle_rss / 1024)) coral_rss_load_mib=$((load_rss / 1024))"
ratio=$(awk -v a="$coral_rps" -v b="$nginx_rps" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "nan" }')
echo "coral_rps=$coral_rps nginx_rps=$nginx_rps ratio=$ratio"
