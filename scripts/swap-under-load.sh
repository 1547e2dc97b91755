#!/usr/bin/env bash
# Configuration swaps under load: the example gateway keeps serving, without a failed request,
# while its configuration files are rewritten 100 times (Portcullis issue #7, "Proof" part 2).
#
#   scripts/swap-under-load.sh                 # 30 s of wrk, 100 changes; about 1 minute in all
#   DURATION=60 CHANGES=200 scripts/swap-under-load.sh
#
# What it does:
#   * installs wrk and nginx (nginx-light) from Debian packages when they are missing, and
#     builds the gateway in release;
#   * starts four upstreams on loopback: nginx, one process each, `return 200`
#     (scripts/swap/nginx.conf);
#   * writes a configuration directory in a fresh temp dir: the Gateway (scripts/swap/gateway.yaml),
#     a ServiceEntry `app.internal` with STATIC endpoints labelled v1/v2, a DestinationRule with
#     subsets v1/v2 and a VirtualService splitting `/` between them;
#   * starts the gateway on it (`--workers 2 --poll 0.1 --access-log off`);
#   * runs `wrk` for DURATION seconds against the gateway and, meanwhile, makes CHANGES
#     configuration changes, one file each, written atomically (rename): VirtualService
#     weights and routes (header and prefix matches, response headers, retries, timeouts),
#     ServiceEntry endpoints added and removed (every subset keeps one), DestinationRule
#     load balancing (round robin, least request, random, ring hash on the source IP, maglev on
#     a header, cookie hashing), connection pools and outlier detection; every 20th change is
#     invalid (a negative weight, an unknown load balancer, broken YAML, a bad regex, a
#     zero port) and must be refused while the previous configuration keeps serving — a probe
#     request checks it — and the change after it restores the file. After each change the
#     script waits until the gateway's admin metrics (`portcullis_config_swaps_total`,
#     `portcullis_config_rejections_total`) show it was applied or refused;
#   * prints wrk's totals (requests, non-2xx answers, socket errors), the swaps the gateway
#     applied and refused (admin metrics, checked against its log), and PASS when no request
#     failed, every valid change was applied and every invalid one refused; exits 1 otherwise.
#
# Everything listens on 127.0.0.1 only; every process the script starts is killed on exit
# (trap), and wrk and each wait are bounded.
#
# Settings (environment): DURATION (s, default 30), CHANGES (100), CONNS (16), THREADS (2),
# WORKERS (gateway workers, 2), SKIP_BUILD (0), RUN_DIR (a fresh temp dir, kept when the run
# fails), and the ports GW_PORT (18280), ADMIN_PORT (18290), UPSTREAM_PORT (18281: four
# upstreams on UPSTREAM_PORT..+3).
set -euo pipefail

DURATION=${DURATION:-30}
CHANGES=${CHANGES:-100}
CONNS=${CONNS:-16}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
SKIP_BUILD=${SKIP_BUILD:-0}
GW_PORT=${GW_PORT:-18280}
ADMIN_PORT=${ADMIN_PORT:-18290}
UPSTREAM_PORT=${UPSTREAM_PORT:-18281}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/scripts/swap"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GATEWAY="$TARGET_DIR/release/examples/gateway"

for v in DURATION CHANGES CONNS THREADS WORKERS GW_PORT ADMIN_PORT UPSTREAM_PORT; do
    [[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || { echo "$v must be a positive whole number" >&2; exit 2; }
done

source "$ROOT/scripts/lib.sh"

# --- tools ---------------------------------------------------------------------------------
install_missing nginx:nginx-light wrk:wrk curl:curl
build_gateway

# --- processes -----------------------------------------------------------------------------
RUN=${RUN_DIR:-$(mktemp -d -t swap-under-load.XXXXXX)}
CONF="$RUN/conf"
mkdir -p "$CONF"
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

for p in "$GW_PORT" "$ADMIN_PORT" $(seq "$UPSTREAM_PORT" $((UPSTREAM_PORT + 3))); do
    port_free "$p" || { echo "port $p is in use (set GW_PORT, ADMIN_PORT, UPSTREAM_PORT)" >&2; exit 1; }
done

UP=()
for n in 1 2 3 4; do
    port=$((UPSTREAM_PORT + n - 1))
    UP+=("$port")
    sed -e "s|@RUN@|$RUN|g" -e "s|@NAME@|up$n|g" -e "s|@PORT@|$port|g" \
        "$HERE/nginx.conf" >"$RUN/up$n.conf"
    "$NGINX" -p "$RUN" -c "$RUN/up$n.conf" -e "$RUN/up$n.error.log" 2>>"$RUN/nginx.stderr" &
    PIDS+=($!)
done

wait_http() { # URL SECONDS
    local deadline=$((SECONDS + $2))
    until curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "no answer from $1" >&2; return 1; }
        sleep 0.1
    done
}
for port in "${UP[@]}"; do wait_http "http://127.0.0.1:$port/" 10; done
log "upstreams: nginx on ${UP[*]}"

# --- configuration generators --------------------------------------------------------------
# State of the valid configuration; each change moves one of these.
W=80      # weight of v1 (v2 gets 100 - W)
ROUTES=0  # VirtualService variant
EPS=0     # ServiceEntry endpoint pattern
LB=0      # DestinationRule variant
CHANGE=0  # change number, written into every file

gen_se() { # [invalid]
    local v1="      - {address: 127.0.0.1, ports: {http: ${UP[0]}}, labels: {version: v1}}"
    local v2="      - {address: 127.0.0.1, ports: {http: ${UP[2]}}, labels: {version: v2}}"
    ((EPS & 1)) && v1+=$'\n'"      - {address: 127.0.0.1, ports: {http: ${UP[1]}}, labels: {version: v1}}"
    ((EPS & 2)) && v2+=$'\n'"      - {address: 127.0.0.1, ports: {http: ${UP[3]}}, labels: {version: v2}}"
    local port_number=80
    [[ "${1:-}" == zero-port ]] && port_number=0
    cat <<EOF
# change $CHANGE
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: app, namespace: istio-system}
spec:
  hosts: [app.internal]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: $port_number, name: http, protocol: HTTP}]
  endpoints:
$v1
$v2
EOF
    [[ "${1:-}" == broken-yaml ]] && printf '  - {address: 127.0.0.1, ports: {http: %s\n' "${UP[0]}"
    return 0
}

gen_dr() { # [invalid]
    local policy
    case $((LB % 6)) in
        0) policy="    loadBalancer: {simple: ROUND_ROBIN}" ;;
        1) policy="    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool:
      tcp: {maxConnections: 10000, connectTimeout: 2s}
      http: {http1MaxPendingRequests: 100000, http2MaxRequests: 100000, maxRetries: 1000}" ;;
        2) policy="    loadBalancer: {simple: RANDOM}
    outlierDetection: {consecutive5xxErrors: 5, interval: 5s, baseEjectionTime: 30s}" ;;
        3) policy="    loadBalancer: {consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 256}}}" ;;
        4) policy="    loadBalancer: {consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 251}}}" ;;
        5) policy="    loadBalancer: {consistentHash: {httpCookie: {name: sticky, path: /, ttl: 60s}}}" ;;
    esac
    [[ "${1:-}" == unknown-lb ]] && policy="    loadBalancer: {simple: FASTEST}"
    cat <<EOF
# change $CHANGE
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: app, namespace: istio-system}
spec:
  host: app.internal
  trafficPolicy:
$policy
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
EOF
}

gen_vs() { # [invalid]
    local w1=$W w2=$((100 - W)) extra="" default_extra="" regex_route=""
    [[ "${1:-}" == negative-weight ]] && w1=-5 && w2=105
    [[ "${1:-}" == bad-regex ]] && regex_route="  - match: [{uri: {regex: \"((\"}}]
    route: [{destination: {host: app.internal, subset: v1, port: {number: 80}}}]
"
    if ((ROUTES % 4 == 1 || ROUTES % 4 == 3)); then
        extra+="  - match: [{uri: {prefix: /pinned}}]
    route: [{destination: {host: app.internal, subset: v1, port: {number: 80}}}]
    headers: {response: {set: {x-pinned: \"$CHANGE\"}}}
"
    fi
    if ((ROUTES % 4 >= 2)); then
        extra+="  - match: [{headers: {x-canary: {exact: \"1\"}}}]
    route: [{destination: {host: app.internal, subset: v2, port: {number: 80}}}]
    rewrite: {uri: /canary}
"
    fi
    if ((ROUTES % 4 == 3)); then
        default_extra="    retries: {attempts: 2, retryOn: \"connect-failure,refused-stream,5xx\"}
    timeout: 10s
"
    fi
    cat <<EOF
# change $CHANGE
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: istio-system}
spec:
  hosts: ["*"]
  gateways: [edge]
  http:
$regex_route$extra  - route:
    - destination: {host: app.internal, subset: v1, port: {number: 80}}
      weight: $w1
    - destination: {host: app.internal, subset: v2, port: {number: 80}}
      weight: $w2
    headers: {request: {set: {x-change: "$CHANGE"}}}
$default_extra
EOF
}

# Writes generator output to CONF/FILE atomically (a rename from outside the watched directory).
put() { # FILE GENERATOR [ARG]
    "$2" "${3:-}" >"$RUN/next.yaml"
    mv -f "$RUN/next.yaml" "$CONF/$1"
}

sed -e "s|@GW_PORT@|$GW_PORT|g" "$HERE/gateway.yaml" >"$CONF/gateway.yaml"
put service-entry.yaml gen_se
put destination-rule.yaml gen_dr
put virtual-service.yaml gen_vs

# --- the gateway ---------------------------------------------------------------------------
"$GATEWAY" --workers "$WORKERS" --admin "127.0.0.1:$ADMIN_PORT" --access-log off --poll 0.1 \
    "$CONF" >"$RUN/gateway.out" 2>"$RUN/gateway.log" &
PIDS+=($!)
GW_PID=$!
wait_http "http://127.0.0.1:$ADMIN_PORT/ready" 30 || { cat "$RUN/gateway.log" >&2; exit 1; }
wait_http "http://127.0.0.1:$GW_PORT/" 10 || { cat "$RUN/gateway.log" >&2; exit 1; }
log "gateway (pid $GW_PID) on :$GW_PORT, admin on :$ADMIN_PORT, configuration in $CONF"

metric() { # NAME -> value (0 when absent)
    curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/stats/prometheus" 2>/dev/null |
        awk -v m="$1" '$1 == m { v = $2 } END { print (v == "" ? 0 : v) }'
}
# Waits until the gateway has applied or refused one more configuration than SEEN.
acknowledged() { # SEEN -> prints "applied" or "refused" (or "lost" after 5 s)
    local seen=$1 deadline=$((SECONDS + 5)) s r
    while ((SECONDS < deadline)); do
        s=$(metric portcullis_config_swaps_total)
        r=$(metric portcullis_config_rejections_total)
        if ((s + r > seen)); then
            if ((r > REFUSED_SEEN)); then echo refused; else echo applied; fi
            return
        fi
        sleep 0.02
    done
    echo lost
}

# --- load and changes ----------------------------------------------------------------------
log "wrk: $THREADS threads, $CONNS connections, ${DURATION}s; $CHANGES configuration changes meanwhile"
timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 5s \
    "http://127.0.0.1:$GW_PORT/" >"$RUN/wrk.txt" 2>&1 &
WRK_PID=$!
PIDS+=($WRK_PID)

now_ms() { date +%s%3N; }
START=$(now_ms)
SPACING=$((DURATION * 850 / CHANGES)) # ms between changes: they span 85 % of the run
INVALID_KINDS=(negative-weight unknown-lb broken-yaml bad-regex zero-port)
declare -A FILE_OF=([negative-weight]=virtual-service.yaml [unknown-lb]=destination-rule.yaml
    [broken-yaml]=service-entry.yaml [bad-regex]=virtual-service.yaml [zero-port]=service-entry.yaml)
declare -A GEN_OF=([virtual-service.yaml]=gen_vs [destination-rule.yaml]=gen_dr [service-entry.yaml]=gen_se)
VALID=0 INVALID=0 ACK_APPLIED=0 ACK_REFUSED=0 LOST=0 MISMATCH=0 PROBES_OK=0 PROBES=0
REFUSED_SEEN=0 SEEN=0
RESTORE=""
declare -A KINDS=()
for ((i = 1; i <= CHANGES; i++)); do
    target=$((START + 1000 + (i - 1) * SPACING))
    while (($(now_ms) < target)); do sleep 0.01; done
    CHANGE=$i
    if [[ -n "$RESTORE" ]]; then
        kind=restore
        put "$RESTORE" "${GEN_OF[$RESTORE]}"
        RESTORE=""
        expect=applied
    elif ((i % 20 == 10)); then
        kind=${INVALID_KINDS[$(((i / 20) % ${#INVALID_KINDS[@]}))]}
        put "${FILE_OF[$kind]}" "${GEN_OF[${FILE_OF[$kind]}]}" "$kind"
        RESTORE=${FILE_OF[$kind]}
        expect=refused
    else
        case $((i % 4)) in
            0) kind=weights; W=$((1 + (W + 16) % 99)); put virtual-service.yaml gen_vs ;;
            1) kind=routes; ROUTES=$((ROUTES + 1)); put virtual-service.yaml gen_vs ;;
            2) kind=endpoints; EPS=$(((EPS + 1) % 4)); put service-entry.yaml gen_se ;;
            3) kind=load-balancing; LB=$((LB + 1)); put destination-rule.yaml gen_dr ;;
        esac
        expect=applied
    fi
    KINDS[$kind]=$((${KINDS[$kind]:-0} + 1))
    if [[ "$expect" == applied ]]; then VALID=$((VALID + 1)); else INVALID=$((INVALID + 1)); fi
    got=$(acknowledged "$SEEN")
    case "$got" in
        applied) ACK_APPLIED=$((ACK_APPLIED + 1)) ;;
        refused) ACK_REFUSED=$((ACK_REFUSED + 1)) ;;
        *) LOST=$((LOST + 1)) ;;
    esac
    [[ "$got" == "$expect" ]] || { MISMATCH=$((MISMATCH + 1)); log "change $i ($kind): expected $expect, got $got"; }
    SEEN=$(($(metric portcullis_config_swaps_total) + $(metric portcullis_config_rejections_total)))
    REFUSED_SEEN=$(metric portcullis_config_rejections_total)
    if [[ "$expect" == refused ]]; then
        # The old configuration keeps serving.
        PROBES=$((PROBES + 1))
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$GW_PORT/" || true)
        [[ "$code" == 200 ]] && PROBES_OK=$((PROBES_OK + 1))
    fi
done
CHANGES_DONE_MS=$(($(now_ms) - START))
wait "$WRK_PID" || true

# --- results -------------------------------------------------------------------------------
cat "$RUN/wrk.txt" >&2
requests=$(awk '/requests in/ { print $1 }' "$RUN/wrk.txt")
non2xx=$(awk -F': ' '/Non-2xx or 3xx responses/ { print $2 }' "$RUN/wrk.txt")
sockerr=$(awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$RUN/wrk.txt")
requests=${requests:-0} non2xx=${non2xx:-0} sockerr=${sockerr:-0}
swaps=$(metric portcullis_config_swaps_total)
refused=$(metric portcullis_config_rejections_total)
log_applied=$(grep -c '^configuration generation [0-9]* applied' "$RUN/gateway.log" || true)
log_refused=$(grep -c '^configuration change refused' "$RUN/gateway.log" || true)
generation=$(curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN_PORT/config_dump" |
    awk -F': ' '/"generation"/ { gsub(",", "", $2); print $2; exit }')
kinds=""
for k in weights routes endpoints load-balancing restore "${INVALID_KINDS[@]}"; do
    [[ -n "${KINDS[$k]:-}" ]] && kinds+="$k ${KINDS[$k]}, "
done

echo
echo "swap under load: wrk ${DURATION}s, $THREADS threads, $CONNS connections; gateway $WORKERS workers"
echo "  changes written:      $CHANGES in $((CHANGES_DONE_MS / 1000)).$(((CHANGES_DONE_MS % 1000) / 100)) s ($VALID valid, $INVALID invalid)"
echo "    by kind:            ${kinds%, }"
echo "  swaps applied:        $swaps (log: $log_applied; generation now $generation)"
echo "  changes refused:      $refused (log: $log_refused); old configuration answered 200 after $PROBES_OK of $PROBES refusals"
echo "  requests:             $requests"
echo "  non-2xx responses:    $non2xx"
echo "  socket errors:        $sockerr"
[[ "$LOST" == 0 ]] || echo "  changes not seen:     $LOST"
[[ "$MISMATCH" == 0 ]] || echo "  unexpected outcomes:  $MISMATCH"
if ((requests > 0 && non2xx == 0 && sockerr == 0 && swaps == VALID && refused == INVALID &&
    PROBES_OK == PROBES && LOST == 0 && MISMATCH == 0)); then
    echo "PASS: no failed request; every valid change applied, every invalid one refused"
    PASSED=1
else
    echo "FAIL"
    exit 1
fi
