#!/bin/sh
# HTTP server benchmark: a hello-world handler on src/http vs nginx with one
# worker returning the same body, both driven by wrk in the same run, at 1
# and at 64 connections. Prints requests/s, latency and the ratio flint/nginx.
#
# wrk uses one thread, so that on a 2-core machine the server and the load
# generator each have a core. The two servers are measured alternately,
# REPEAT times, and the median of each is reported, so that a passing
# disturbance of the machine does not decide the ratio.
#
#   BUILD=build sh bench/http.sh        (DURATION=3s, REPEAT=3 by default)
set -eu
BUILD=${BUILD:-build}
DURATION=${DURATION:-3s}
REPEAT=${REPEAT:-3}
tmp=$(mktemp -d)
flint_pid=""
nginx_pid=""
cleanup() {
  [ -n "$flint_pid" ] && kill "$flint_pid" 2>/dev/null || true
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

flint_port=$(free_port)
nginx_port=$(free_port)

"$BUILD/bench/bench_http_hello" "127.0.0.1:$flint_port" >/dev/null &
flint_pid=$!

mkdir -p "$tmp/logs"
cat > "$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      default_type text/plain;
      return 200 "Hello, World!\n";
    }
  }
}
CONF
nginx -c "$tmp/nginx.conf" -p "$tmp" -e "$tmp/logs/error.log"

# wait for both to answer
for port in "$flint_port" "$nginx_port"; do
  i=0
  until curl -sf "http://127.0.0.1:$port/" >/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "server on $port did not start"; exit 1; }
    sleep 0.05
  done
done
[ "$(curl -s "http://127.0.0.1:$flint_port/")" = "$(curl -s "http://127.0.0.1:$nginx_port/")" ] || {
  echo "the two servers do not return the same body"; exit 1; }

run() { # name port threads conns -> prints "rps p50 p99"
  wrk -t"$3" -c"$4" -d"$DURATION" --latency "http://127.0.0.1:$2/" > "$tmp/wrk.out" 2>&1
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk.out")
  p50=$(awk '$1 == "50%" {print $2}' "$tmp/wrk.out")
  p99=$(awk '$1 == "99%" {print $2}' "$tmp/wrk.out")
  errors=$(awk '/Non-2xx|Socket errors/' "$tmp/wrk.out")
  [ -n "$errors" ] && echo "  ($1: $errors)" >&2
  echo "$rps $p50 $p99"
}

median() { sort -n | awk '{ v[NR] = $0 } END { print v[int((NR + 1) / 2)] }'; }

echo "HTTP hello world, $(nproc) cores, wrk -t1, $REPEAT x $DURATION per server, medians"
printf '%-12s %-8s %12s %10s %10s\n' server conns req/s p50 p99
for conns in 1 64; do
  : > "$tmp/nginx.runs"; : > "$tmp/flint.runs"
  i=0
  while [ $i -lt "$REPEAT" ]; do
    run nginx "$nginx_port" 1 "$conns" >> "$tmp/nginx.runs"
    run flint "$flint_port" 1 "$conns" >> "$tmp/flint.runs"
    i=$((i + 1))
  done
  for name in nginx flint; do
    rps=$(awk '{print $1}' "$tmp/$name.runs" | median)
    line=$(awk -v r="$rps" '$1 == r { print; exit }' "$tmp/$name.runs")
    set -- $line
    printf '%-12s %-8s %12s %10s %10s\n' "$name" "$conns" "$1" "$2" "$3"
    eval "${name}_rps=$1"
  done
  ratio=$(awk -v f="$flint_rps" -v n="$nginx_rps" 'BEGIN { printf "%.2f", f / n }')
  echo "ratio flint/nginx at $conns connection(s): $ratio"
done
