#!/usr/bin/env bash
# An upstream dies under load: retries and outlier detection keep the example gateway's
# requests successful (Portcullis issue #7, "Proof" part 3).
#
#   scripts/fault.sh                           # 30 s of wrk, one endpoint killed at 10 s
#   DURATION=60 KILL_AT=20 scripts/fault.sh
#
# What it does:
#   * installs wrk and nginx (nginx-light) from Debian packages when they are missing, and
#     builds the gateway in release;
#   * starts three upstreams on loopback: nginx, one process each (no master: killing the
#     process takes the endpoint down whole), `return 200` (scripts/swap/nginx.conf);
#   * starts the gateway on scripts/fault/config.yaml: one ServiceEntry with the three STATIC
#     endpoints; a DestinationRule with round robin, `connectTimeout: 1s` and outlier detection
#     (`consecutive5xxErrors: 3`, `consecutiveGatewayErrors: 3`, `interval: 1s`,
#     `baseEjectionTime: 30s`, `maxEjectionPercent: 50`); a VirtualService with
#     `retries: {attempts: 3, perTryTimeout: 2s, retryOn: connect-failure,refused-stream,5xx}`;
#   * runs `wrk` for DURATION seconds and kills one upstream (SIGKILL) after KILL_AT seconds:
#     requests in flight on it are reset, new connections to it are refused;
#   * prints wrk's totals, the success ratio ((requests - non-2xx - socket errors) /
#     requests), and from the gateway's admin metrics the retries, connection failures,
#     ejections and the answers by status; PASS when the ratio is at least MIN_RATIO (0.99),
#     exit 1 otherwise.
#
# Everything listens on 127.0.0.1 only; every process the script starts is killed on exit
# (trap), and wrk is bounded by `timeout`.
#
# Settings (environment): DURATION (s, default 30), KILL_AT (s, 10), CONNS (16), THREADS (2),
# WORKERS (gateway workers, 2), MIN_RATIO (0.99), SKIP_BUILD (0), RUN_DIR (a fresh temp dir,
# kept when the run fails), and the ports GW_PORT (18380), ADMIN_PORT (18390), UPSTREAM_PORT
# (18381: three upstreams on UPSTREAM_PORT..+2).
set -euo pipefail

DURATION=${DURATION:-30}
KILL_AT=${KILL_AT:-10}
CONNS=${CONNS:-16}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
MIN_RATIO=${MIN_RATIO:-0.99}
SKIP_BUILD=${SKIP_BUILD:-0}
GW_PORT=${GW_PORT:-18380}
ADMIN_PORT=${ADMIN_PORT:-18390}
UPSTREAM_PORT=${UPSTREAM_PORT:-18381}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GATEWAY="$TARGET_DIR/release/examples/gateway"

for v in DURATION KILL_AT CONNS THREADS WORKERS GW_PORT ADMIN_PORT UPSTREAM_PORT; do
    [[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || { echo "$v must be a positive whole number" >&2; exit 2; }
done
((KILL_AT < DURATION)) || { echo "KILL_AT must be less than DURATION" >&2; exit 2; }

source "$ROOT/scripts/lib.sh"

# --- tools ---------------------------------------------------------------------------------
install_missing nginx:nginx-light wrk:wrk curl:curl
build_gateway

# --- processes -----------------------------------------------------------------------------
RUN=${RUN_DIR:-$(mktemp -d -t fault.XXXXXX)}
mkdir -p "$RUN/conf"
PIDS=()
PASSED=0
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.2
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ "$PASSED" == 1 && -z "${RUN_DIR:-}" ]]; then
        rm -rf "$RUN"
    else
        echo "run directory kept: $RUN" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in "$GW_PORT" "$ADMIN_PORT" $(seq "$UPSTREAM_PORT" $((UPSTREAM_PORT + 2))); do
    port_free "$p" || { echo "port $p is in use (set GW_PORT, ADMIN_PORT, UPSTREAM_PORT)" >&2; exit 1; }
done

UP=()
UP_PIDS=()
for n in 1 2 3; do
    port=$((UPSTREAM_PORT + n - 1))
    UP+=("$port")
    sed -e "s|@RUN@|$RUN|g" -e "s|@NAME@|up$n|g" -e "s|@PORT@|$port|g" \
        "$ROOT/scripts/swap/nginx.conf" >"$RUN/up$n.conf"
    "$NGINX" -p "$RUN" -c "$RUN/up$n.conf" -e "$RUN/up$n.error.log" 2>>"$RUN/nginx.stderr" &
    PIDS+=($!)
    UP_PIDS+=($!)
done

wait_http() { # URL SECONDS
    local deadline=$((SECONDS + $2))
    until curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "no answer from $1" >&2; return 1; }
        sleep 0.1
    done
}
for port in "${UP[@]}"; do wait_http "http://127.0.0.1:$port/" 10; done
log "upstreams: nginx on ${UP[*]} (pids ${UP_PIDS[*]})"

sed -e "s|@GW_PORT@|$GW_PORT|g" -e "s|@UP1@|${UP[0]}|g" -e "s|@UP2@|${UP[1]}|g" \
    -e "s|@UP3@|${UP[2]}|g" "$ROOT/scripts/fault/config.yaml" >"$RUN/conf/config.yaml"
"$GATEWAY" --workers "$WORKERS" --admin "127.0.0.1:$ADMIN_PORT" --access-log off \
    "$RUN/conf" >"$RUN/gateway.out" 2>"$RUN/gateway.log" &
PIDS+=($!)
wait_http "http://127.0.0.1:$ADMIN_PORT/ready" 30 || { cat "$RUN/gateway.log" >&2; exit 1; }
wait_http "http://127.0.0.1:$GW_PORT/" 10 || { cat "$RUN/gateway.log" >&2; exit 1; }
log "gateway on :$GW_PORT, admin on :$ADMIN_PORT"

# --- load and the fault --------------------------------------------------------------------
log "wrk: $THREADS threads, $CONNS connections, ${DURATION}s; killing up2 (:${UP[1]}) at ${KILL_AT}s"
timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s \
    "http://127.0.0.1:$GW_PORT/" >"$RUN/wrk.txt" 2>&1 &
WRK_PID=$!
PIDS+=($WRK_PID)
sleep "$KILL_AT"
kill -KILL "${UP_PIDS[1]}"
{ wait "${UP_PIDS[1]}"; } 2>/dev/null || true
log "killed up2 (pid ${UP_PIDS[1]})"
sleep 3
curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/stats/prometheus" >"$RUN/metrics-after-kill.txt" || true
wait "$WRK_PID" || true
curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/stats/prometheus" >"$RUN/metrics.txt" || true

# --- results -------------------------------------------------------------------------------
cat "$RUN/wrk.txt" >&2
requests=$(awk '/requests in/ { print $1 }' "$RUN/wrk.txt")
non2xx=$(awk -F': ' '/Non-2xx or 3xx responses/ { print $2 }' "$RUN/wrk.txt")
sockerr=$(awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$RUN/wrk.txt")
requests=${requests:-0} non2xx=${non2xx:-0} sockerr=${sockerr:-0}
metric() { # FILE PREFIX -> sum of the samples whose name (with labels) starts with PREFIX
    awk -v p="$2" 'index($1, p) == 1 { s += $2 } END { printf "%d", s }' "$1"
}
CLUSTER='cluster="outbound|80||backend.internal"'
M="$RUN/metrics.txt"
retries=$(metric "$M" "portcullis_cluster_upstream_rq_retry_total{$CLUSTER")
connect_fail=$(metric "$M" "portcullis_cluster_upstream_cx_connect_fail_total{$CLUSTER")
ejections=$(metric "$M" "portcullis_cluster_outlier_detection_ejections_enforced_total{$CLUSTER")
ejected_after_kill=$(metric "$RUN/metrics-after-kill.txt" "portcullis_cluster_outlier_detection_ejections_active{$CLUSTER")
upstream_codes=$(awk -v c="$CLUSTER" 'index($1, "portcullis_cluster_upstream_rq_total{" c) == 1 {
        match($1, /response_code="[^"]*"/); code = substr($1, RSTART + 15, RLENGTH - 16)
        printf "%s%s %s", sep, code, $2; sep = ", " }' "$M")
downstream_codes=$(awk 'index($1, "portcullis_requests_total{") == 1 {
        match($1, /response_code="[^"]*"/); n[substr($1, RSTART + 15, RLENGTH - 16)] += $2 }
        END { for (c in n) { printf "%s%s %s", sep, c, n[c]; sep = ", " } }' "$M")
ok=$((requests - non2xx - sockerr))
ratio=$(awk -v ok="$ok" -v n="$requests" 'BEGIN { printf "%.5f", (n > 0 ? ok / n : 0) }')

echo
echo "fault: wrk ${DURATION}s, $THREADS threads, $CONNS connections; gateway $WORKERS workers; 3 endpoints, up2 killed (SIGKILL) at ${KILL_AT}s"
echo "  requests:             $requests"
echo "  non-2xx responses:    $non2xx"
echo "  socket errors:        $sockerr"
echo "  success ratio:        $ratio (target >= $MIN_RATIO)"
echo "  gateway retries:      $retries"
echo "  connect failures:     $connect_fail"
echo "  ejections:            $ejections (endpoints ejected 3 s after the kill: $ejected_after_kill)"
echo "  upstream answers:     $upstream_codes"
echo "  downstream answers:   $downstream_codes"
if awk -v r="$ratio" -v m="$MIN_RATIO" -v n="$requests" 'BEGIN { exit !(n > 0 && r >= m) }'; then
    echo "PASS"
    PASSED=1
else
    echo "FAIL"
    exit 1
fi
