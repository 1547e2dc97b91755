#!/usr/bin/env bash
# Benchmark: the example gateway against nginx as a reverse proxy, on loopback, one worker each
# (Portcullis issue #7, "Proof"; /work/shared/notes/PERF.md design B1).
#
#   scripts/bench-vs-nginx.sh            # 3 runs of 10 s per measurement, about 9 minutes
#   RUNS=1 DURATION=5 scripts/bench-vs-nginx.sh
#
# What it does:
#   * installs nginx (nginx-light) and wrk from Debian packages when they are missing
#     (`apt-get update` once, then `apt-get install -y`), and builds the gateway in release;
#   * generates a self-signed certificate with openssl (the same one for both proxies);
#   * starts ONE upstream: nginx, 1 worker, `return 200 "ok\n"`, access log off
#     (scripts/bench/nginx-backend.conf);
#   * starts the proxies under test, each with ONE worker and upstream keep-alive:
#     nginx (scripts/bench/nginx-proxy.conf) and the gateway (`--workers 1`,
#     scripts/bench/gateway.yaml, `--credentials` for the certificate); the access log is off for
#     both (ACCESS_LOG=on turns it on for both: buffered to a file). nginx serves twice:
#     "nginx" adds to each upstream request what the gateway adds, as an Istio gateway (Envoy)
#     does and ingress-nginx does by default (X-Forwarded-For appended, X-Forwarded-Proto,
#     X-Request-Id kept or minted; the client's Host), so the two do the same work; "nginx-bare"
#     only forwards, and is reported for reference;
#   * measures with `wrk -t1 --latency`, HTTP/1.1 keep-alive: direct to the backend, then
#     through each proxy, at c=1 and c=64, plain HTTP and with TLS terminated at the proxy,
#     RUNS times over (rounds interleave the proxies, so drift of the machine hits all alike);
#   * prints the median over the runs of requests/s, p50 and p99 for each, the CPU time each
#     proxy used per request, and the ratios against the targets:
#       R_tput = rps(gateway) / rps(nginx) at c=64                       target >= 1.0
#       R_lat  = (p50(gateway) - p50(direct)) / (p50(nginx) - p50(direct)) at c=1   target <= 1.2
#     and the same ratios against nginx-bare (no target: it does less).
#
# By default (PIN=1, with at least 2 CPUs) the proxy under test runs on CPU 1 and wrk and the
# backend on CPU 0 (`taskset`), which cuts the noise of a 2-core machine: the proxy has a core of
# its own and the comparison is about its cost per request.
#
# Everything listens on 127.0.0.1 only; every process the script starts is killed on exit
# (trap), and each wrk run is bounded by `timeout`.
#
# Settings (environment): RUNS (3; PERF.md B1 reports the median of 3), DURATION (s, default
# 10), WARMUP (s, default 2), CONNS ("1 64"), PIN (1), ACCESS_LOG (off|on), SKIP_BUILD (0),
# RUN_DIR (a fresh temp dir), and the ports BACKEND_PORT (18080), NGINX_HTTP_PORT (18081),
# NGINX_HTTPS_PORT (18443), NGINX_BARE_HTTP_PORT (18082), NGINX_BARE_HTTPS_PORT (18444) — the
# gateway's ports (18180, 18543) and its upstream port are in scripts/bench/gateway.yaml.
set -euo pipefail

RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-"1 64"}
PIN=${PIN:-1}
ACCESS_LOG=${ACCESS_LOG:-off}
SKIP_BUILD=${SKIP_BUILD:-0}
BACKEND_PORT=${BACKEND_PORT:-18080}
NGINX_HTTP_PORT=${NGINX_HTTP_PORT:-18081}
NGINX_HTTPS_PORT=${NGINX_HTTPS_PORT:-18443}
NGINX_BARE_HTTP_PORT=${NGINX_BARE_HTTP_PORT:-18082}
NGINX_BARE_HTTPS_PORT=${NGINX_BARE_HTTPS_PORT:-18444}
GW_HTTP_PORT=18180
GW_HTTPS_PORT=18543

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/scripts/bench"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GATEWAY="$TARGET_DIR/release/examples/gateway"

case "$ACCESS_LOG" in on | off) ;; *) echo "ACCESS_LOG must be on or off" >&2; exit 2 ;; esac
[[ "$DURATION" =~ ^[0-9]+$ && "$WARMUP" =~ ^[0-9]+$ ]] || { echo "DURATION and WARMUP are whole seconds" >&2; exit 2; }
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "RUNS is a positive whole number" >&2; exit 2; }

source "$ROOT/scripts/lib.sh"

# --- tools ---------------------------------------------------------------------------------
install_missing nginx:nginx-light wrk:wrk openssl:openssl
build_gateway

CPUS=$(nproc)
if [[ "$PIN" == 1 && "$CPUS" -ge 2 ]] && command -v taskset >/dev/null 2>&1; then
    ON_LOAD=(taskset -c 0)  # wrk and the backend
    ON_PROXY=(taskset -c 1) # the proxy under test
    PINNING="proxy on CPU 1; wrk and backend on CPU 0"
else
    ON_LOAD=()
    ON_PROXY=()
    PINNING="none"
fi

# --- processes -----------------------------------------------------------------------------
RUN=${RUN_DIR:-$(mktemp -d -t bench-vs-nginx.XXXXXX)}
mkdir -p "$RUN"
PIDS=()
cleanup() {
    stop_started
    [[ -n "${RUN_DIR:-}" ]] || rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in "$BACKEND_PORT" "$NGINX_HTTP_PORT" "$NGINX_HTTPS_PORT" "$NGINX_BARE_HTTP_PORT" \
    "$NGINX_BARE_HTTPS_PORT" "$GW_HTTP_PORT" "$GW_HTTPS_PORT"; do
    port_free "$p" || { echo "port $p is in use" >&2; exit 1; }
done

log "certificate (self-signed, EC P-256)"
bench_cert "$RUN/creds"

if [[ "$ACCESS_LOG" == on ]]; then
    ACCESS_LOG_DIRECTIVE="access_log $RUN/proxy.access.log combined buffer=32k flush=250ms;"
    GW_LOG=(--access-log stdout)
else
    ACCESS_LOG_DIRECTIVE="access_log off;"
    GW_LOG=(--access-log off)
fi
fill() {
    sed -e "s|@RUN@|$RUN|g" -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" \
        -e "s|@NGINX_HTTP_PORT@|$NGINX_HTTP_PORT|g" -e "s|@NGINX_HTTPS_PORT@|$NGINX_HTTPS_PORT|g" \
        -e "s|@NGINX_BARE_HTTP_PORT@|$NGINX_BARE_HTTP_PORT|g" \
        -e "s|@NGINX_BARE_HTTPS_PORT@|$NGINX_BARE_HTTPS_PORT|g" \
        -e "s|@ACCESS_LOG_DIRECTIVE@|$ACCESS_LOG_DIRECTIVE|g" -e "s|@ACCESS_LOG@|$ACCESS_LOG|g" "$1"
}
fill "$BENCH/nginx-backend.conf" >"$RUN/backend.conf"
fill "$BENCH/nginx-proxy.conf" >"$RUN/proxy.conf"

log "starting the backend (nginx, 1 worker) on :$BACKEND_PORT"
"${ON_LOAD[@]}" "$NGINX" -e "$RUN/backend.error.log" -p "$RUN" -c "$RUN/backend.conf" &
PIDS+=($!)
log "starting nginx (1 worker) on :$NGINX_HTTP_PORT, :$NGINX_HTTPS_PORT (the gateway's work)" \
    "and :$NGINX_BARE_HTTP_PORT, :$NGINX_BARE_HTTPS_PORT (bare)"
"${ON_PROXY[@]}" "$NGINX" -e "$RUN/proxy.error.log" -p "$RUN" -c "$RUN/proxy.conf" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
log "starting the gateway (--workers 1) on :$GW_HTTP_PORT and :$GW_HTTPS_PORT"
"${ON_PROXY[@]}" "$GATEWAY" --workers 1 --admin off "${GW_LOG[@]}" \
    --credentials "$RUN/creds" "$BENCH/gateway.yaml" >"$RUN/gateway.out" 2>"$RUN/gateway.err" &
GW_PID=$!
PIDS+=("$GW_PID")
for p in "$BACKEND_PORT" "$NGINX_HTTP_PORT" "$NGINX_HTTPS_PORT" "$NGINX_BARE_HTTP_PORT" \
    "$NGINX_BARE_HTTPS_PORT" "$GW_HTTP_PORT" "$GW_HTTPS_PORT"; do
    wait_port "$p"
done

# wrk output → "rps p50_us p99_us errors"
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1000000;
        else if (u == "m") m = 60000000; else m = 1;
        printf "%.0f", n * m }'
}
parse_wrk() {
    local out=$1 rps p50 p99 errors
    rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    errors=$(awk '/Non-2xx|Socket errors/ {printf "%s; ", $0}' <<<"$out")
    echo "${rps:-0} ${p50:-0} ${p99:-0} ${errors:-none}"
}
wrk_run() { # url conns seconds
    local threads=1
    timeout $(($3 + 30)) "${ON_LOAD[@]}" wrk -t"$threads" -c"$2" -d"$3s" --latency "$1" 2>&1 || true
}

declare -A RPS P50 P99 CPU_US
measure() { # name url conns run [pid]
    local name=$1 url=$2 c=$3 r=$4 pid=${5:-} before after out res
    ((WARMUP > 0)) && wrk_run "$url" "$c" "$WARMUP" >/dev/null
    [[ -n "$pid" ]] && before=$(cpu_ticks "$pid")
    out=$(wrk_run "$url" "$c" "$DURATION")
    [[ -n "$pid" ]] && after=$(cpu_ticks "$pid")
    read -r rps p50 p99 errors <<<"$(parse_wrk "$out")"
    RPS[$name,$c,$r]=$rps
    P50[$name,$c,$r]=$p50
    P99[$name,$c,$r]=$p99
    if [[ -n "$pid" && "$rps" -gt 0 ]]; then
        local hz
        hz=$(getconf CLK_TCK)
        CPU_US[$name,$c,$r]=$(awk -v t=$((after - before)) -v hz="$hz" -v n=$((rps * DURATION)) \
            'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
    else
        CPU_US[$name,$c,$r]="-"
    fi
    [[ "$errors" == none ]] || echo "warning: $name c=$c run $r: $errors" >&2
    log "$(printf 'run %s/%s  %-14s c=%-3s %8s req/s  p50 %6s us  p99 %7s us' "$r" "$RUNS" "$name" "$c" "$rps" "$p50" "$p99")"
}

# The median of one figure over the runs (the lower of the middle two for an even count, so
# whole numbers stay whole): `median ARRAY name c`.
median() {
    local -n figures=$1
    local r values=()
    for ((r = 1; r <= RUNS; r++)); do values+=("${figures[$2,$3,$r]}"); done
    printf '%s\n' "${values[@]}" | sort -g | awk '{v[NR] = $1} END {
        if (v[1] == "-") print "-"; else print v[int((NR + 1) / 2)] }'
}

# cargo fuzz runs libFuzzer binaries (fuzz/target/<triple>/release/<target> -artifact_prefix=…).
FUZZ_PATTERN='fuzz run|-artifact_prefix='
FUZZ_AT_START=$(pgrep -fc -- "$FUZZ_PATTERN" 2>/dev/null || true)
FUZZ_AT_START=${FUZZ_AT_START:-0}
log "measuring: $RUNS runs of wrk -t1 -c{${CONNS// /,}} -d${DURATION}s --latency (warm-up ${WARMUP}s), pinning: $PINNING"
NAMES="direct nginx nginx-bare gateway nginx-tls nginx-bare-tls gateway-tls"
for ((r = 1; r <= RUNS; r++)); do
    for c in $CONNS; do
        measure direct "http://127.0.0.1:$BACKEND_PORT/" "$c" "$r"
        measure nginx "http://127.0.0.1:$NGINX_HTTP_PORT/" "$c" "$r" "$NGINX_PID"
        measure nginx-bare "http://127.0.0.1:$NGINX_BARE_HTTP_PORT/" "$c" "$r" "$NGINX_PID"
        measure gateway "http://127.0.0.1:$GW_HTTP_PORT/" "$c" "$r" "$GW_PID"
        measure nginx-tls "https://127.0.0.1:$NGINX_HTTPS_PORT/" "$c" "$r" "$NGINX_PID"
        measure nginx-bare-tls "https://127.0.0.1:$NGINX_BARE_HTTPS_PORT/" "$c" "$r" "$NGINX_PID"
        measure gateway-tls "https://127.0.0.1:$GW_HTTPS_PORT/" "$c" "$r" "$GW_PID"
    done
done
for c in $CONNS; do
    for name in $NAMES; do
        RPS[$name,$c]=$(median RPS "$name" "$c")
        P50[$name,$c]=$(median P50 "$name" "$c")
        P99[$name,$c]=$(median P99 "$name" "$c")
        CPU_US[$name,$c]=$(median CPU_US "$name" "$c")
    done
done

# --- report --------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" -v op="$3" 'BEGIN {
    if (r == "-") print "n/a"; else if ((op == ">=" && r >= t) || (op == "<=" && r <= t)) print "met";
    else print "MISSED" }'; }

echo
echo "Loopback, HTTP/1.1 keep-alive, wrk -t1, ${DURATION}s per row, median of $RUNS runs; one worker per proxy;"
echo "access log $ACCESS_LOG for both; upstream keep-alive for both; pinning: $PINNING."
echo "$(nproc) CPUs, $(uname -r), nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'), $(date -u '+%Y-%m-%d %H:%M UTC')."
echo
printf '| %-14s | %3s | %9s | %8s | %8s | %9s | %11s |\n' path c "req/s" "p50 µs" "p99 µs" "added p50" "CPU µs/req"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ----------------  ----- ----------- ---------- ---------- ----------- -------------
for c in $CONNS; do
    for name in $NAMES; do
        added=$((P50[$name,$c] - P50[direct,$c]))
        [[ $name == direct ]] && added="-"
        printf '| %-14s | %3s | %9s | %8s | %8s | %9s | %11s |\n' "$name" "$c" "${RPS[$name,$c]}" \
            "${P50[$name,$c]}" "${P99[$name,$c]}" "$added" "${CPU_US[$name,$c]}"
    done
done
echo
hi=${CONNS##* }
lo=${CONNS%% *}
printf '| %-34s | %-5s | %-5s | %-6s |\n' ratio http https target
printf '|%s|%s|%s|%s|\n' ------------------------------------ ------- ------- --------
t_http=$(ratio "${RPS[gateway,$hi]}" "${RPS[nginx,$hi]}")
t_tls=$(ratio "${RPS[gateway-tls,$hi]}" "${RPS[nginx-tls,$hi]}")
printf '| %-34s | %-5s | %-5s | %-6s |\n' "R_tput = rps(gw)/rps(nginx), c=$hi" "$t_http" "$t_tls" ">= 1.0"
l_http=$(ratio $((P50[gateway,$lo] - P50[direct,$lo])) $((P50[nginx,$lo] - P50[direct,$lo])))
l_tls=$(ratio $((P50[gateway-tls,$lo] - P50[direct,$lo])) $((P50[nginx-tls,$lo] - P50[direct,$lo])))
printf '| %-34s | %-5s | %-5s | %-6s |\n' "R_lat = added p50 gw/nginx, c=$lo" "$l_http" "$l_tls" "<= 1.2"
c_http=$(ratio "${CPU_US[gateway,$hi]}" "${CPU_US[nginx,$hi]}")
c_tls=$(ratio "${CPU_US[gateway-tls,$hi]}" "${CPU_US[nginx-tls,$hi]}")
printf '| %-34s | %-5s | %-5s | %-6s |\n' "R_cpu = CPU/req gw/nginx, c=$hi" "$c_http" "$c_tls" "-"
# Against nginx forwarding only (it does less than the gateway): for reference, no target.
printf '| %-34s | %-5s | %-5s | %-6s |\n' "R_tput vs nginx-bare, c=$hi" \
    "$(ratio "${RPS[gateway,$hi]}" "${RPS[nginx-bare,$hi]}")" \
    "$(ratio "${RPS[gateway-tls,$hi]}" "${RPS[nginx-bare-tls,$hi]}")" "-"
printf '| %-34s | %-5s | %-5s | %-6s |\n' "R_lat vs nginx-bare, c=$lo" \
    "$(ratio $((P50[gateway,$lo] - P50[direct,$lo])) $((P50[nginx-bare,$lo] - P50[direct,$lo])))" \
    "$(ratio $((P50[gateway-tls,$lo] - P50[direct,$lo])) $((P50[nginx-bare-tls,$lo] - P50[direct,$lo])))" "-"
printf '| %-34s | %-5s | %-5s | %-6s |\n' "R_cpu vs nginx-bare, c=$hi" \
    "$(ratio "${CPU_US[gateway,$hi]}" "${CPU_US[nginx-bare,$hi]}")" \
    "$(ratio "${CPU_US[gateway-tls,$hi]}" "${CPU_US[nginx-bare-tls,$hi]}")" "-"
echo
echo "targets: throughput http $(verdict "$t_http" 1.0 '>='), https $(verdict "$t_tls" 1.0 '>=');" \
    "added latency http $(verdict "$l_http" 1.2 '<='), https $(verdict "$l_tls" 1.2 '<=')"
if [[ "$FUZZ_AT_START" != 0 ]] || pgrep -f -- "$FUZZ_PATTERN" >/dev/null 2>&1; then
    echo "note: fuzzing processes were running during this benchmark (pgrep -f -- '$FUZZ_PATTERN')"
fi
