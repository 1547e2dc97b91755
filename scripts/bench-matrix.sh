#!/usr/bin/env bash
# Benchmark matrix: the example gateway against nginx and haproxy as plain reverse proxies, on
# every protocol, on loopback (Portcullis issue #20, "Method").
#
#   scripts/bench-matrix.sh                                  # 3 rounds of 5 s rows, about 12 min
#   RUNS=1 DURATION=3 scripts/bench-matrix.sh                # a quick look
#   GATEWAY_BEFORE=/tmp/old/target/release/examples/gateway scripts/bench-matrix.sh
#                                                            # a second build in the same run
#
# What it does:
#   * installs what is missing from Debian packages (nginx-light, haproxy, wrk, nghttp2-client
#     for h2load, openssl, python3) and builds the gateway in release;
#   * generates one self-signed EC P-256 certificate, served by every proxy;
#   * starts one upstream, nginx `return 200` (scripts/bench/nginx-backend.conf), and the proxies,
#     each with one worker or thread and keep-alive to the upstream:
#       gateway  `--workers 1 --access-log off`, scripts/bench/gateway.yaml;
#       before   the same for the binary GATEWAY_BEFORE, when set, on ports 10 above;
#       nginx    scripts/bench/nginx-matrix.conf: forwards, adds no header (the lighter peer);
#       haproxy  `nbthread 1`, `http-reuse always`, tickets and session cache as by default;
#   * first, on the fresh processes, the resident memory of IDLE_N idle HTTP/1.1 keep-alive
#     connections (scripts/bench/idle_clients.py, as scripts/bench-idle.sh measures it: RSS of
#     the process and its children after minus before, over IDLE_N; one measurement per proxy);
#   * then RUNS rounds; in each, every row against every proxy in turn (interleaved, so drift
#     of the machine hits all alike), each preceded by a WARMUP:
#       h1 ka 64     wrk -t1 -c64, HTTP/1.1 keep-alive
#       h1 ka 1      wrk -t1 -c1
#       h1 close 32  wrk -t1 -c32 -H 'Connection: close' (a new connection per request)
#       tls ka 64    wrk -t1 -c64 over TLS
#       tls close 32 the same with a new TLS connection per request (no resumption: wrk does not
#                    keep sessions)
#       handshakes   openssl s_time -new: full TLS handshakes, one client, nothing requested
#       h2c 16x16    h2load -t1 -c16 -m16 (HTTP/2 with prior knowledge)
#       h2 tls 16x16 h2load -t1 -c16 -m16 over TLS (ALPN h2)
#     and records requests (or handshakes) per second and the proxy's CPU time per request;
#   * then two workers' efficiency: two more gateways, unpinned, one with `--workers 1` and
#     one with `--workers 2`, under `wrk -t2 -c64` keep-alive; requests per CPU-second of the
#     gateway, two workers over one (the load generator shares the two cores, so throughput
#     cannot double here; efficiency is what two workers must keep);
#   * prints the medians over the rounds, the ratio of the gateway to each peer and to the
#     better of the two, per row.
#
# Pinning (PIN=1, at least 2 CPUs): the proxies on CPU 1, the load generators and the upstream
# on CPU 0. Every proxy stays up for the whole run; only the one under load is busy.
#
# Settings (environment): RUNS (3), DURATION (s, 5), WARMUP (s, 1), IDLE_N (3000; 0 skips the
# idle row), WORKERS (1; 0 skips the two-worker rows), PIN (1), SKIP_BUILD (0), GATEWAY_BEFORE.
# Ports: upstream 18080; nginx 18082 (HTTP), 18084 (h2c), 18444 (HTTPS); haproxy 18083 (HTTP),
# 18085 (h2c), 18445 (HTTPS); the gateway 18180 (HTTP and h2c) and 18543 (HTTPS), before
# 18190 and 18553, the efficiency gateways 18200/18563 and 18210/18573. All on 127.0.0.1; every
# process the script starts is killed on exit.
set -euo pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
IDLE_N=${IDLE_N:-3000}
WORKERS=${WORKERS:-1}
PIN=${PIN:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
GATEWAY_BEFORE=${GATEWAY_BEFORE:-}
BACKEND_PORT=18080

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/scripts/bench"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GATEWAY="$TARGET_DIR/release/examples/gateway"

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "RUNS is a positive whole number" >&2; exit 2; }
[[ "$DURATION" =~ ^[1-9][0-9]*$ && "$WARMUP" =~ ^[0-9]+$ && "$IDLE_N" =~ ^[0-9]+$ ]] ||
    { echo "DURATION, WARMUP and IDLE_N are whole numbers" >&2; exit 2; }
[[ -z "$GATEWAY_BEFORE" || -x "$GATEWAY_BEFORE" ]] || { echo "no binary at $GATEWAY_BEFORE" >&2; exit 2; }

source "$ROOT/scripts/lib.sh"
install_missing nginx:nginx-light haproxy:haproxy wrk:wrk h2load:nghttp2-client openssl:openssl \
    python3:python3
build_gateway
MAX_CONNECTIONS=$((IDLE_N + 1000))
(($(ulimit -n) > MAX_CONNECTIONS)) || ulimit -n $((MAX_CONNECTIONS + 1000))

if [[ "$PIN" == 1 && $(nproc) -ge 2 ]] && command -v taskset >/dev/null 2>&1; then
    ON_LOAD=(taskset -c 0)
    ON_PROXY=(taskset -c 1)
    PINNING="proxies on CPU 1; load generators and upstream on CPU 0"
else
    ON_LOAD=()
    ON_PROXY=()
    PINNING="none"
fi

RUN=$(mktemp -d -t bench-matrix.XXXXXX)
PIDS=()
cleanup() {
    stop_started
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- configuration -------------------------------------------------------------------------
bench_cert "$RUN/creds"
cat "$RUN/creds/bench-cert/tls.crt" "$RUN/creds/bench-cert/tls.key" >"$RUN/haproxy.pem"

sed -e "s|@RUN@|$RUN|g" -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" "$BENCH/nginx-backend.conf" \
    >"$RUN/backend.conf"
sed -e "s|@RUN@|$RUN|g" -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" -e "s|@NGINX_HTTP_PORT@|18082|g" \
    -e "s|@NGINX_H2C_PORT@|18084|g" -e "s|@NGINX_HTTPS_PORT@|18444|g" \
    -e "s|@MAX_CONNECTIONS@|$MAX_CONNECTIONS|g" "$BENCH/nginx-matrix.conf" >"$RUN/nginx.conf"
cat >"$RUN/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn $MAX_CONNECTIONS
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
frontend matrix
    bind 127.0.0.1:18083
    bind 127.0.0.1:18085 proto h2
    bind 127.0.0.1:18445 ssl crt $RUN/haproxy.pem alpn h2,http/1.1
    default_backend upstream
backend upstream
    http-reuse always
    server backend 127.0.0.1:$BACKEND_PORT
CFG
# gateway_config OFFSET — scripts/bench/gateway.yaml with its two listener ports moved.
gateway_config() {
    sed -e "s|number: 18180|number: $((18180 + $1))|" -e "s|number: 18543|number: $((18543 + $1))|" \
        "$BENCH/gateway.yaml" >"$RUN/gateway-$1.yaml"
    echo "$RUN/gateway-$1.yaml"
}

# --- processes -----------------------------------------------------------------------------
declare -A PID HTTP H2C HTTPS
PROXIES=(gateway)
[[ -n "$GATEWAY_BEFORE" ]] && PROXIES+=(before)
PROXIES+=(nginx haproxy)
start_gateway() { # name binary offset workers [pin...]
    local name=$1 binary=$2 offset=$3 workers=$4
    shift 4
    "$@" "$binary" --workers "$workers" --admin off --access-log off --credentials "$RUN/creds" \
        "$(gateway_config "$offset")" >>"$RUN/$name.out" 2>&1 &
    PID[$name]=$!
    PIDS+=($!)
    HTTP[$name]=$((18180 + offset))
    H2C[$name]=$((18180 + offset))
    HTTPS[$name]=$((18543 + offset))
}

for port in "$BACKEND_PORT" 18082 18083 18084 18085 18444 18445 18180 18543 18190 18553 18200 18563 18210 18573; do
    port_free "$port" || { echo "port $port is in use" >&2; exit 1; }
done
log "starting the upstream (nginx, 1 worker) on :$BACKEND_PORT"
"${ON_LOAD[@]}" "$NGINX" -e "$RUN/backend.error.log" -p "$RUN" -c "$RUN/backend.conf" &
PIDS+=($!)
start_gateway gateway "$GATEWAY" 0 1 "${ON_PROXY[@]}"
[[ -n "$GATEWAY_BEFORE" ]] && start_gateway before "$GATEWAY_BEFORE" 10 1 "${ON_PROXY[@]}"
"${ON_PROXY[@]}" "$NGINX" -e "$RUN/nginx.error.log" -p "$RUN" -c "$RUN/nginx.conf" &
PID[nginx]=$!
PIDS+=($!)
HTTP[nginx]=18082 H2C[nginx]=18084 HTTPS[nginx]=18444
"${ON_PROXY[@]}" haproxy -db -f "$RUN/haproxy.cfg" >>"$RUN/haproxy.log" 2>&1 &
PID[haproxy]=$!
PIDS+=($!)
HTTP[haproxy]=18083 H2C[haproxy]=18085 HTTPS[haproxy]=18445
wait_port "$BACKEND_PORT"
for p in "${PROXIES[@]}"; do
    wait_port "${HTTP[$p]}"
    wait_port "${H2C[$p]}"
    wait_port "${HTTPS[$p]}"
done
log "proxies: ${PROXIES[*]}; pinning: $PINNING"

# --- measurements --------------------------------------------------------------------------
now() { date +%s.%N; }

# load ROW PROXY SECONDS → "count" (requests or handshakes completed) on stdout, with errors
# reported on stderr.
load() {
    local row=$1 p=$2 s=$3 out bound=$(($3 + 30))
    local http="http://127.0.0.1:${HTTP[$p]}/" https="https://127.0.0.1:${HTTPS[$p]}/"
    wrk1() { timeout $bound "${ON_LOAD[@]}" wrk -t1 -d"${s}s" "$@" 2>&1 || true; }
    h2load16() { timeout $bound "${ON_LOAD[@]}" h2load -t1 -c16 -m16 -D "$s" "$1" 2>&1 || true; }
    case "$row" in
    h1-ka-64) out=$(wrk1 -c64 "$http") ;;
    h1-ka-1) out=$(wrk1 -c1 "$http") ;;
    h1-close-32) out=$(wrk1 -c32 -H 'Connection: close' "$http") ;;
    tls-ka-64) out=$(wrk1 -c64 "$https") ;;
    tls-close-32) out=$(wrk1 -c32 -H 'Connection: close' "$https") ;;
    # Two workers share both CPUs with the load generator: nothing pinned, two wrk threads.
    workers) out=$(timeout $bound wrk -t2 -c64 -d"${s}s" "$http" 2>&1 || true) ;;
    handshakes)
        out=$(timeout $bound "${ON_LOAD[@]}" openssl s_time -connect "127.0.0.1:${HTTPS[$p]}" -new -time "$s" 2>&1 </dev/null || true)
        # "N connections in T.TTs; …" (T is the client's user time; the rate uses the
        # script's wall clock instead)
        awk '/connections in [0-9.]+s;/ {print $1; exit}' <<<"$out"
        return
        ;;
    h2c) out=$(h2load16 "http://127.0.0.1:${H2C[$p]}/") ;;
    h2-tls) out=$(h2load16 "$https") ;;
    esac
    case "$row" in
    h2c | h2-tls)
        grep -q 'Application protocol: h2' <<<"$out" || echo "warning: $p $row: $(grep -m1 -i 'protocol\|error' <<<"$out")" >&2
        awk '/^requests:/ {print $8; exit}' <<<"$out" # "requests: T total, S started, D done, OK succeeded, …"
        awk '/^requests:/ && $10 + $12 + $14 > 0 {print "warning: '"$p $row"': " $0 > "/dev/stderr"}' <<<"$out"
        ;;
    *)
        awk '/requests in/ {print $1; exit}' <<<"$out"
        awk '/Non-2xx|Socket errors/ {print "warning: '"$p $row"': " $0 > "/dev/stderr"}' <<<"$out"
        ;;
    esac
}

declare -A RATE CPU
HZ=$(getconf CLK_TCK)
measure() { # row proxy round
    local row=$1 p=$2 r=$3 before after t0 t1 n
    ((WARMUP > 0)) && load "$row" "$p" "$WARMUP" >/dev/null
    before=$(cpu_ticks "${PID[$p]}")
    t0=$(now)
    n=$(load "$row" "$p" "$DURATION")
    t1=$(now)
    after=$(cpu_ticks "${PID[$p]}")
    n=${n:-0}
    RATE[$row,$p,$r]=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
    CPU[$row,$p,$r]=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$n" \
        'BEGIN {if (n == 0) print "-"; else printf "%.1f", t / hz * 1e6 / n}')
    log "$(printf 'round %s/%s  %-12s %-8s %9s /s  %6s CPU µs each' "$r" "$RUNS" "$row" "$p" "${RATE[$row,$p,$r]}" "${CPU[$row,$p,$r]}")"
}

declare -A IDLE
if ((IDLE_N > 0)); then
    for p in "${PROXIES[@]}"; do
        IDLE[$p]=$(idle_cost "${PID[$p]}" "${HTTP[$p]}" h1 "$IDLE_N")
        log "idle: $p ${IDLE[$p]} bytes per idle HTTP/1.1 connection ($IDLE_N connections)"
    done
fi

ROWS=(h1-ka-64 h1-ka-1 h1-close-32 tls-ka-64 tls-close-32 handshakes h2c h2-tls)
for ((r = 1; r <= RUNS; r++)); do
    for row in "${ROWS[@]}"; do
        for p in "${PROXIES[@]}"; do measure "$row" "$p" "$r"; done
    done
done

if [[ "$WORKERS" != 0 ]]; then
    log "two workers' efficiency: gateways unpinned with --workers 1 and --workers 2"
    start_gateway w1 "$GATEWAY" 20 1
    start_gateway w2 "$GATEWAY" 30 2
    wait_port "${HTTP[w1]}"
    wait_port "${HTTP[w2]}"
    for ((r = 1; r <= RUNS; r++)); do
        for p in w1 w2; do measure workers "$p" "$r"; done
    done
fi

# --- report --------------------------------------------------------------------------------
median() { # ARRAY row proxy → the median over the rounds (the lower middle for an even count)
    local -n figures=$1
    local r
    for ((r = 1; r <= RUNS; r++)); do echo "${figures[$2,$3,$r]}"; done | sort -g |
        awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? a : b }'; }

describe() {
    case "$1" in
    h1-ka-64) echo "HTTP/1.1 keep-alive, 64 connections (req/s)" ;;
    h1-ka-1) echo "HTTP/1.1 keep-alive, 1 connection (req/s)" ;;
    h1-close-32) echo "HTTP/1.1 new connection per request, 32 (req/s)" ;;
    tls-ka-64) echo "HTTPS keep-alive, 64 connections (req/s)" ;;
    tls-close-32) echo "HTTPS new connection per request, 32 (req/s)" ;;
    handshakes) echo "full TLS handshakes, openssl s_time -new (/s)" ;;
    h2c) echo "h2c, h2load 16 connections × 16 streams (req/s)" ;;
    h2-tls) echo "h2 over TLS, h2load 16 × 16 (req/s)" ;;
    esac
}

echo
echo "Loopback; one worker or thread per proxy; ${DURATION} s per row after ${WARMUP} s of warm-up;"
echo "medians of $RUNS interleaved rounds; pinning: $PINNING."
echo "$(nproc) CPUs, $(uname -r), $("$NGINX" -v 2>&1 | sed 's|.*/|nginx |'), $(haproxy -v | head -1 | awk '{print "haproxy", $3}'),"
echo "$(wrk --version 2>&1 | head -1 | awk '{print $1, $2}'), $(h2load --version 2>&1 | head -1), $(openssl version | awk '{print $1, $2}'); $(date -u '+%Y-%m-%d %H:%M UTC')."
echo
header="| workload | gateway"
line="|---|---"
[[ -n "$GATEWAY_BEFORE" ]] && { header+=" | before"; line+="|---"; }
header+=" | nginx | haproxy | gateway / nginx | gateway / haproxy | gateway / better"
line+="|---|---|---|---|---"
[[ -n "$GATEWAY_BEFORE" ]] && { header+=" | before / better"; line+="|---"; }
echo "$header |"
echo "$line|"
for row in "${ROWS[@]}"; do
    declare -A M=()
    for p in "${PROXIES[@]}"; do M[$p]=$(median RATE "$row" "$p"); done
    better=$(max "${M[nginx]}" "${M[haproxy]}")
    out="| $(describe "$row") | ${M[gateway]}"
    [[ -n "$GATEWAY_BEFORE" ]] && out+=" | ${M[before]}"
    out+=" | ${M[nginx]} | ${M[haproxy]} | $(ratio "${M[gateway]}" "${M[nginx]}") | $(ratio "${M[gateway]}" "${M[haproxy]}") | **$(ratio "${M[gateway]}" "$better")**"
    [[ -n "$GATEWAY_BEFORE" ]] && out+=" | $(ratio "${M[before]}" "$better")"
    echo "$out |"
done
if ((IDLE_N > 0)); then
    out="| RSS per idle HTTP/1.1 keep-alive connection (bytes, $IDLE_N connections) | ${IDLE[gateway]}"
    [[ -n "$GATEWAY_BEFORE" ]] && out+=" | ${IDLE[before]}"
    out+=" | ${IDLE[nginx]} | ${IDLE[haproxy]} | | | "
    [[ -n "$GATEWAY_BEFORE" ]] && out+=" | "
    echo "$out |"
fi
echo
echo "CPU time of the proxy per request or handshake (µs), medians:"
echo
header="| workload | gateway"
line="|---|---"
[[ -n "$GATEWAY_BEFORE" ]] && { header+=" | before"; line+="|---"; }
echo "$header | nginx | haproxy |"
echo "$line|---|---|"
for row in "${ROWS[@]}"; do
    out="| $(describe "$row" | sed 's/ ([^)]*)$//')"
    for p in "${PROXIES[@]}"; do out+=" | $(median CPU "$row" "$p")"; done
    echo "$out |"
done
if [[ "$WORKERS" != 0 ]]; then
    # Requests per gateway CPU-second from the CPU time per request.
    w1=$(awk -v us="$(median CPU workers w1)" 'BEGIN {printf "%.0f", 1e6 / us}')
    w2=$(awk -v us="$(median CPU workers w2)" 'BEGIN {printf "%.0f", 1e6 / us}')
    echo
    echo "Two workers (unpinned, wrk -t2 -c64 keep-alive): requests per gateway CPU-second $w1 with one"
    echo "worker, $w2 with two: efficiency $(ratio "$w2" "$w1") (target >= 0.9); req/s $(median RATE workers w1) and $(median RATE workers w2)."
fi
