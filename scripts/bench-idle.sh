#!/usr/bin/env bash
# Benchmark: what an idle keep-alive connection costs the example gateway, nginx and haproxy,
# in resident memory.
#
#   scripts/bench-idle.sh                 # 3 000 connections, 3 rounds, about a minute
#   N=10000 RUNS=1 scripts/bench-idle.sh
#
# What it does:
#   * installs nginx (nginx-light), haproxy and openssl from Debian packages when missing, and
#     builds the gateway in release;
#   * starts the upstream (nginx, `return 200`, scripts/bench/nginx-backend.conf) and the three
#     proxies, each with one worker or thread and upstream keep-alive: the gateway
#     (scripts/bench/gateway.yaml, as bench-vs-nginx.sh runs it), nginx
#     (scripts/bench/nginx-proxy.conf) and haproxy (`nbthread 1`, `http-reuse always`);
#   * per round and proxy: N connections, each with one request answered and then left idle
#     (scripts/bench/idle_clients.py), and the proxy's resident memory (VmRSS of the process and
#     its children, so nginx's worker counts) before the connections and once all are idle; the
#     difference over N is the cost of one idle connection. HTTP/1.1 for all three; HTTP/2
#     (h2c with prior knowledge) for the gateway too;
#   * prints the median per proxy over the rounds.
#
# Settings (environment): N (3000), RUNS (3), SKIP_BUILD (0), HAPROXY_PORT (18083). The other
# ports are bench-vs-nginx.sh's. Everything listens on 127.0.0.1; every process started is
# killed on exit.
set -euo pipefail

N=${N:-3000}
RUNS=${RUNS:-3}
SKIP_BUILD=${SKIP_BUILD:-0}
BACKEND_PORT=18080
NGINX_HTTP_PORT=18081
HAPROXY_PORT=${HAPROXY_PORT:-18083}
GW_HTTP_PORT=18180

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/scripts/bench"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GATEWAY="$TARGET_DIR/release/examples/gateway"
[[ "$N" =~ ^[1-9][0-9]*$ && "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "N and RUNS are positive whole numbers" >&2; exit 2; }

source "$ROOT/scripts/lib.sh"
install_missing nginx:nginx-light haproxy:haproxy openssl:openssl python3:python3
build_gateway
(($(ulimit -n) > N + 100)) || ulimit -n $((N + 1000))

RUN=$(mktemp -d -t bench-idle.XXXXXX)
PIDS=()
cleanup() {
    stop_started
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_cert "$RUN/creds"
fill() {
    sed -e "s|@RUN@|$RUN|g" -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" \
        -e "s|@NGINX_HTTP_PORT@|$NGINX_HTTP_PORT|g" -e "s|@NGINX_HTTPS_PORT@|18443|g" \
        -e "s|@NGINX_BARE_HTTP_PORT@|18082|g" -e "s|@NGINX_BARE_HTTPS_PORT@|18444|g" \
        -e "s|@ACCESS_LOG_DIRECTIVE@|access_log off;|g" -e "s|@ACCESS_LOG@|off|g" "$1"
}
fill "$BENCH/nginx-backend.conf" >"$RUN/backend.conf"
fill "$BENCH/nginx-proxy.conf" | sed -e "s|worker_connections [0-9]*;|worker_connections $((N + 1000));|" >"$RUN/proxy.conf"
cat >"$RUN/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn $((N + 1000))
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
frontend idle
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend upstream
backend upstream
    http-reuse always
    server backend 127.0.0.1:$BACKEND_PORT
CFG

log "starting the backend (nginx, 1 worker) on :$BACKEND_PORT"
"$NGINX" -e "$RUN/backend.error.log" -p "$RUN" -c "$RUN/backend.conf" &
PIDS+=($!)
wait_port "$BACKEND_PORT"

# Each measurement gets a proxy process of its own: memory a process has used and freed stays
# resident (the allocator keeps it), so a second measurement in the same process would start
# from a high floor and count reused memory as free.
start_proxy() { # name → PID, port listening
    case "$1" in
    gateway)
        "$GATEWAY" --workers 1 --admin off --access-log off --credentials "$RUN/creds" \
            "$BENCH/gateway.yaml" >>"$RUN/gateway.out" 2>>"$RUN/gateway.err" &
        PROXY_PORT=$GW_HTTP_PORT
        ;;
    nginx)
        "$NGINX" -e "$RUN/proxy.error.log" -p "$RUN" -c "$RUN/proxy.conf" &
        PROXY_PORT=$NGINX_HTTP_PORT
        ;;
    haproxy)
        haproxy -db -f "$RUN/haproxy.cfg" >>"$RUN/haproxy.log" 2>&1 &
        PROXY_PORT=$HAPROXY_PORT
        ;;
    esac
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    wait_port "$PROXY_PORT"
}
stop_proxy() {
    kill -TERM "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    local i
    for i in $(seq 50); do
        port_free "$PROXY_PORT" && return 0
        sleep 0.1
    done
}

declare -A COST
ROWS=("gateway h1" "nginx h1" "haproxy h1" "gateway h2c")
for r in $(seq "$RUNS"); do
    for row in "${ROWS[@]}"; do
        read -r name mode <<<"$row"
        start_proxy "$name"
        COST[$name,$mode,$r]=$(idle_cost "$PROXY_PID" "$PROXY_PORT" "$mode" "$N")
        [[ "${COST[$name,$mode,$r]}" != - ]] || exit 1
        stop_proxy
        log "round $r: $name $mode: ${COST[$name,$mode,$r]} bytes per idle connection"
    done
done

median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
echo
echo "Idle keep-alive connections: $N per round, $RUNS rounds, resident memory (VmRSS) after minus before, median"
echo
echo "| proxy | protocol | bytes per idle connection |"
echo "|---|---|---|"
for row in "${ROWS[@]}"; do
    read -r name mode <<<"$row"
    m=$(for r in $(seq "$RUNS"); do echo "${COST[$name,$mode,$r]}"; done | median)
    echo "| $name | ${mode/h1/HTTP\/1.1} | $m |"
done
