#!/usr/bin/env bash
# Benchmark: the example gateway with configuration at scale (Portcullis issue #20,
# "Configuration at scale"): 10,000 VirtualServices on one Gateway (20,000 routes, ten files,
# scripts/gen-virtualservices.sh), one worker.
#
#   scripts/bench-config-scale.sh                  # N=10000, 10 s per wrk run
#   N=1000 DURATION=5 SKIP_BUILD=1 scripts/bench-config-scale.sh
#
# What it does:
#   * installs nginx (nginx-light) and wrk from Debian packages when missing, builds the gateway
#     in release (unless SKIP_BUILD=1);
#   * generates the configuration, starts the backend (nginx, 1 worker, `return 200`,
#     scripts/bench/nginx-backend.conf) and the gateway (`--workers 1`, admin on ADMIN_PORT,
#     `--poll POLL`) on the generated directory;
#   * reports the time from the gateway's start to the configuration being served (admin
#     /ready answers 200 and host vs-0.scale.local answers 200);
#   * runs wrk (16 connections, DURATION s) against host vs-0.scale.local: once steady, once
#     with a one-line change made to another VirtualService (vs-3's host renamed to
#     vs-3b.scale.local, in vs-3.yaml) half-way through; reports the time from the change to
#     the new host serving (scripts/bench/edit_and_wait.py, started a second before wrk, makes
#     the change and polls every 5 ms over one keep-alive connection, beside wrk; the time
#     includes the file poll interval), and wrk's p99 and max latency of both runs;
#   * reports the gateway's RSS (VmRSS, VmHWM) after loading and after the change;
#   * with wrk stopped, makes IDLE_CHANGES one-line changes one at a time (vs-3's host back and
#     forth) and reports the median time to serve one (the file poll included: POLL=0.01 for
#     the rebuild itself) and the gateway's CPU time per change (utime + stime from
#     /proc/PID/stat, less its idle rate measured just before): what a rebuild costs,
#     whatever the poll interval.
#
# By default (PIN=1, with at least 2 CPUs) the gateway runs on CPU 1, wrk and the backend on
# CPU 0 (`taskset`), as in issue #20's measurement.
#
# Everything listens on 127.0.0.1 only; every process the script starts is killed on exit
# (trap), and each wrk run and each wait is bounded.
#
# Settings (environment): N (10000), DURATION (s, 10), CONNS (16), POLL (gateway --poll, s,
# 0.1), IDLE_CHANGES (8), PIN (1), SKIP_BUILD (0), RUN_DIR (a fresh temp dir), START_TIMEOUT
# (s, 120), and the ports BACKEND_PORT (18080), GW_PORT (18280), ADMIN_PORT (18281).
set -euo pipefail

N=${N:-10000}
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
POLL=${POLL:-0.1}
IDLE_CHANGES=${IDLE_CHANGES:-8}
PIN=${PIN:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
START_TIMEOUT=${START_TIMEOUT:-120}
BACKEND_PORT=${BACKEND_PORT:-18080}
GW_PORT=${GW_PORT:-18280}
ADMIN_PORT=${ADMIN_PORT:-18281}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/scripts/bench"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GATEWAY="$TARGET_DIR/release/examples/gateway"

[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "N is a positive whole number (at least 4)" >&2; exit 2; }
((N >= 4)) || { echo "N must be at least 4 (vs-3 is the one changed)" >&2; exit 2; }
[[ "$DURATION" =~ ^[1-9][0-9]*$ && "$CONNS" =~ ^[1-9][0-9]*$ ]] || {
    echo "DURATION and CONNS are positive whole numbers" >&2
    exit 2
}
[[ "$START_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || { echo "START_TIMEOUT is whole seconds" >&2; exit 2; }
[[ "$IDLE_CHANGES" =~ ^[1-9][0-9]*$ ]] || { echo "IDLE_CHANGES is a positive whole number" >&2; exit 2; }

source "$ROOT/scripts/lib.sh"

# --- tools ---------------------------------------------------------------------------------
install_missing nginx:nginx-light wrk:wrk curl:curl python3:python3
build_gateway

if [[ "$PIN" == 1 && $(nproc) -ge 2 ]] && command -v taskset >/dev/null 2>&1; then
    ON_LOAD=(taskset -c 0)
    ON_PROXY=(taskset -c 1)
    PINNING="gateway on CPU 1; wrk and backend on CPU 0"
else
    ON_LOAD=()
    ON_PROXY=()
    PINNING="not pinned"
fi

RUN=${RUN_DIR:-$(mktemp -d -t portcullis-scale.XXXXXX)}
mkdir -p "$RUN"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.3
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [[ -n "${RUN_DIR:-}" ]] || rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in "$BACKEND_PORT" "$GW_PORT" "$ADMIN_PORT"; do
    port_free "$p" || { echo "port $p is in use" >&2; exit 1; }
done

now_ms() { date +%s%3N; }
# status HOST — the HTTP status the gateway answers for HOST (000 when it does not answer).
status() {
    curl -s -o /dev/null -m 2 -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$GW_PORT/" || true
}
# wait_200 HOST TIMEOUT_S — polls every 5 ms until HOST answers 200.
wait_200() {
    local deadline=$(($(now_ms) + $2 * 1000))
    until [[ $(status "$1") == 200 ]]; do
        (($(now_ms) < deadline)) || { echo "$1 not served after $2 s; logs in $RUN" >&2; return 1; }
        sleep 0.005
    done
}
rss() { awk '/^VmRSS|^VmHWM/ {printf "%s %s %s  ", $1, $2, $3}' "/proc/$1/status"; }
# A process's CPU time so far, in clock ticks: utime + stime, the 14th and 15th fields of
# /proc/PID/stat, counted after the command name (which may hold spaces).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# --- configuration and processes -----------------------------------------------------------
log "generating $N VirtualServices"
GEN_START=$(now_ms)
N=$N PORT=$GW_PORT BACKEND_PORT=$BACKEND_PORT "$ROOT/scripts/gen-virtualservices.sh" "$RUN/config"
log "generated in $(($(now_ms) - GEN_START)) ms ($(du -sh "$RUN/config" | cut -f1))"

sed -e "s|@RUN@|$RUN|g" -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" "$BENCH/nginx-backend.conf" \
    >"$RUN/backend.conf"
log "starting the backend (nginx, 1 worker) on :$BACKEND_PORT"
"${ON_LOAD[@]}" "$NGINX" -e "$RUN/backend.error.log" -p "$RUN" -c "$RUN/backend.conf" &
PIDS+=($!)

log "starting the gateway (--workers 1, $PINNING) on :$GW_PORT"
START=$(now_ms)
"${ON_PROXY[@]}" "$GATEWAY" --workers 1 --admin "127.0.0.1:$ADMIN_PORT" --access-log off \
    --poll "$POLL" "$RUN/config" >"$RUN/gateway.out" 2>"$RUN/gateway.err" &
GW_PID=$!
PIDS+=("$GW_PID")
deadline=$((START + START_TIMEOUT * 1000))
until [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/ready" || true) == 200 ]]; do
    kill -0 "$GW_PID" 2>/dev/null || { echo "the gateway exited; see $RUN/gateway.err" >&2; exit 1; }
    (($(now_ms) < deadline)) || { echo "not ready after $START_TIMEOUT s" >&2; exit 1; }
    sleep 0.005
done
READY_MS=$(($(now_ms) - START))
wait_200 vs-0.scale.local "$START_TIMEOUT"
SERVED_MS=$(($(now_ms) - START))
RSS_LOADED=$(rss "$GW_PID")
[[ $(status vs-3b.scale.local) == 404 ]] || { echo "vs-3b.scale.local is served before the change" >&2; exit 1; }

# --- wrk -----------------------------------------------------------------------------------
# wrk --latency output → "p99 max" (as wrk prints them, with units)
p99_max() {
    awk '$1 == "Latency" && NF >= 4 {max = $4} $1 == "99%" {p99 = $2} END {print p99, max}' "$1"
}
run_wrk() {
    timeout $((DURATION + 30)) "${ON_LOAD[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency \
        -H "Host: vs-0.scale.local" "http://127.0.0.1:$GW_PORT/" >"$1" 2>&1
}

log "wrk steady ($CONNS connections, $DURATION s)"
run_wrk "$RUN/wrk.steady"

log "wrk with a change to vs-3 half-way"
# The probe is one process on one keep-alive connection, beside wrk: a curl per probe would
# take milliseconds of CPU each from the processes being measured. It starts a second before
# wrk and makes the change half-way through wrk's run, so that starting its interpreter (about
# 0.1 s of CPU, on wrk's CPU) falls outside the run.
"${ON_LOAD[@]}" python3 "$BENCH/edit_and_wait.py" "$GW_PORT" vs-3b.scale.local \
    "$RUN/config/vs-3.yaml" "  hosts: [vs-3.scale.local]" "  hosts: [vs-3b.scale.local]" 60 \
    "$(awk -v d="$DURATION" 'BEGIN {print 1 + d / 2}')" >"$RUN/change.ms" &
PROBE_PID=$!
PIDS+=("$PROBE_PID")
sleep 1
run_wrk "$RUN/wrk.change" || { echo "wrk failed; see $RUN/wrk.change" >&2; exit 1; }
wait "$PROBE_PID" || { echo "the change was not served; see $RUN/gateway.err" >&2; exit 1; }
CHANGE_MS=$(cat "$RUN/change.ms")
RSS_CHANGED=$(rss "$GW_PID")

# --- idle changes --------------------------------------------------------------------------
log "$IDLE_CHANGES idle changes, one at a time"
IDLE_BEFORE=$(cpu_ticks "$GW_PID")
sleep 2
IDLE_START=$(cpu_ticks "$GW_PID")
IDLE_START_MS=$(now_ms)
IDLE_MS=()
for ((i = 1; i <= IDLE_CHANGES; i++)); do
    if ((i % 2)); then from=vs-3b to=vs-3; else from=vs-3 to=vs-3b; fi
    IDLE_MS+=("$("${ON_LOAD[@]}" python3 "$BENCH/edit_and_wait.py" "$GW_PORT" "$to.scale.local" \
        "$RUN/config/vs-3.yaml" "  hosts: [$from.scale.local]" "  hosts: [$to.scale.local]" 60)")
    sleep 0.5
done
IDLE_END=$(cpu_ticks "$GW_PID")
IDLE_SPAN_MS=$(($(now_ms) - IDLE_START_MS))
IDLE_MEDIAN=$(printf '%s\n' "${IDLE_MS[@]}" | sort -n |
    awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
CPU_PER_CHANGE=$(awk -v before="$IDLE_BEFORE" -v start="$IDLE_START" -v end="$IDLE_END" \
    -v span="$IDLE_SPAN_MS" -v n="$IDLE_CHANGES" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        idle = (start - before) / 2 * span / 1000
        printf "%.0f", ((end - start) - idle) * 1000 / hz / n
    }')

read -r STEADY_P99 STEADY_MAX < <(p99_max "$RUN/wrk.steady")
read -r CHANGE_P99 CHANGE_MAX < <(p99_max "$RUN/wrk.change")
STEADY_RPS=$(awk '/^Requests\/sec/ {print $2}' "$RUN/wrk.steady")
CHANGE_RPS=$(awk '/^Requests\/sec/ {print $2}' "$RUN/wrk.change")

# --- report --------------------------------------------------------------------------------
cat <<REPORT

configuration at scale: $N VirtualServices, $((2 * N)) routes, 10 files; gateway --workers 1 ($PINNING)
start → /ready 200:            $READY_MS ms
start → vs-0 served:           $SERVED_MS ms
change → vs-3b served:         $CHANGE_MS ms   (file poll every $POLL s included)

wrk -c$CONNS ${DURATION}s      requests/s   p99        max
  steady                      $STEADY_RPS   $STEADY_P99   $STEADY_MAX
  change half-way             $CHANGE_RPS   $CHANGE_P99   $CHANGE_MAX

RSS after loading:             $RSS_LOADED
RSS after the change:          $RSS_CHANGED

idle change → served:          $IDLE_MEDIAN ms median of $IDLE_CHANGES (${IDLE_MS[*]}; file poll every $POLL s included)
gateway CPU per idle change:   $CPU_PER_CHANGE ms
REPORT
if grep -q "Non-2xx" "$RUN/wrk.steady" "$RUN/wrk.change"; then
    echo "warning: wrk saw non-2xx responses:" >&2
    grep -H "Non-2xx" "$RUN/wrk.steady" "$RUN/wrk.change" >&2
fi
