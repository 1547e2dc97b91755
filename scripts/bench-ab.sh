#!/usr/bin/env bash
# Benchmark: two builds of the example gateway against each other, paired, to tell a change's
# cost from the machine's noise.
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY
#   PAIRS=8 DURATION=8 scripts/bench-ab.sh /tmp/old/release/examples/gateway target/release/examples/gateway
#
# Build the "old" binary from another checkout, for example:
#   git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --release --example gateway)
#
# What it does:
#   * installs nginx (nginx-light), wrk and openssl from Debian packages when they are missing;
#   * starts one upstream (nginx, 1 worker, `return 200`, scripts/bench/nginx-backend.conf) and
#     BOTH gateways at once, each with one worker and scripts/bench/gateway.yaml (the new one
#     on ports shifted by 10), both on CPU 1, wrk and the upstream on CPU 0 (`taskset`);
#   * PAIRS times, for plain HTTP and for HTTPS: wrk (c=C, DURATION s, after a 2 s warm-up)
#     against one gateway and then the other, alternating which goes first; the gateway's CPU
#     time per request is its utime+stime (/proc/PID/stat) over wrk's request count;
#   * prints each pair, then per scheme the medians and the median of the paired new/old
#     ratios. Both processes live through the whole run, so drift of the machine (another
#     tenant, frequency) hits a pair alike; the paired ratio is the figure to quote.
#
# Settings (environment): PAIRS (8), DURATION (s, 8), C (64), BACKEND_PORT (18080). The
# gateways listen on 18180/18543 (old) and 18190/18553 (new), as in scripts/bench/gateway.yaml.
# Everything listens on 127.0.0.1 only; every process the script starts is killed on exit.
set -euo pipefail

[[ $# -eq 2 && -x "$1" && -x "$2" ]] || {
    echo "usage: $0 OLD_GATEWAY_BINARY NEW_GATEWAY_BINARY" >&2
    exit 2
}
OLD_BIN=$1
NEW_BIN=$2
PAIRS=${PAIRS:-8}
DURATION=${DURATION:-8}
C=${C:-64}
BACKEND_PORT=${BACKEND_PORT:-18080}
[[ "$PAIRS" =~ ^[1-9][0-9]*$ && "$DURATION" =~ ^[1-9][0-9]*$ && "$C" =~ ^[1-9][0-9]*$ ]] || {
    echo "PAIRS, DURATION and C are positive whole numbers" >&2
    exit 2
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/scripts/bench"
GATEWAY=$NEW_BIN
SKIP_BUILD=1
source "$ROOT/scripts/lib.sh"
install_missing nginx:nginx-light wrk:wrk openssl:openssl

if [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null 2>&1; then
    ON_LOAD=(taskset -c 0)
    ON_PROXY=(taskset -c 1)
else
    ON_LOAD=()
    ON_PROXY=()
fi

RUN=$(mktemp -d -t bench-ab.XXXXXX)
PIDS=()
cleanup() {
    stop_started
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in "$BACKEND_PORT" 18180 18543 18190 18553; do
    port_free "$p" || { echo "port $p is in use" >&2; exit 1; }
done

mkdir -p "$RUN/old" "$RUN/new"
bench_cert "$RUN/creds"
sed -e "s|@RUN@|$RUN|g" -e "s|@BACKEND_PORT@|$BACKEND_PORT|g" "$BENCH/nginx-backend.conf" \
    >"$RUN/backend.conf"
sed -e "s/18080/$BACKEND_PORT/g" "$BENCH/gateway.yaml" >"$RUN/old/gateway.yaml"
sed -e "s/18080/$BACKEND_PORT/g" -e 's/18180/18190/g' -e 's/18543/18553/g' \
    "$BENCH/gateway.yaml" >"$RUN/new/gateway.yaml"

log "starting the backend (nginx, 1 worker) on :$BACKEND_PORT"
"${ON_LOAD[@]}" "$NGINX" -e "$RUN/backend.error.log" -p "$RUN" -c "$RUN/backend.conf" &
PIDS+=($!)
start_gateway() { # binary dir
    "${ON_PROXY[@]}" "$1" --workers 1 --admin off --access-log off --credentials "$RUN/creds" \
        "$RUN/$2/gateway.yaml" >"$RUN/$2.out" 2>"$RUN/$2.err" &
    PIDS+=($!)
}
log "starting the old gateway on :18180, :18543 and the new one on :18190, :18553"
start_gateway "$OLD_BIN" old
OLD_PID=$!
start_gateway "$NEW_BIN" new
NEW_PID=$!
for p in "$BACKEND_PORT" 18180 18543 18190 18553; do wait_port "$p"; done

TICK=$(getconf CLK_TCK)
# measure PID URL — prints "requests/s CPU-µs-per-request".
measure() {
    local before after out reqs rps
    timeout 20 "${ON_LOAD[@]}" wrk -t1 -c"$C" -d2s "$2" >/dev/null 2>&1 || true
    before=$(cpu_ticks "$1")
    out=$(timeout $((DURATION + 20)) "${ON_LOAD[@]}" wrk -t1 -c"$C" -d"${DURATION}s" "$2")
    after=$(cpu_ticks "$1")
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    awk -v a="$after" -v b="$before" -v r="$reqs" -v t="$TICK" -v rps="$rps" \
        'BEGIN { printf "%.0f %.2f\n", rps, (a - b) / t * 1e6 / r }'
}

RESULTS="$RUN/results"
log "measuring: $PAIRS pairs of wrk -t1 -c$C -d${DURATION}s per scheme, alternating the order"
for i in $(seq "$PAIRS"); do
    for scheme in http https; do
        if [[ $scheme == http ]]; then
            u_old=http://127.0.0.1:18180/ u_new=http://127.0.0.1:18190/
        else
            u_old=https://127.0.0.1:18543/ u_new=https://127.0.0.1:18553/
        fi
        if ((i % 2)); then
            o=$(measure "$OLD_PID" "$u_old") n=$(measure "$NEW_PID" "$u_new")
        else
            n=$(measure "$NEW_PID" "$u_new") o=$(measure "$OLD_PID" "$u_old")
        fi
        echo "pair $i $scheme old $o new $n" | tee -a "$RESULTS"
    done
done

echo
printf '%-6s | %-22s | %-22s | %-28s\n' scheme "old: req/s, CPU µs/req" "new: req/s, CPU µs/req" "paired new/old CPU (median)"
for scheme in http https; do
    awk -v s="$scheme" '
        function median(a, n,   i, j, t) {
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        $3 == s { n++; orps[n] = $5; ocpu[n] = $6; nrps[n] = $8; ncpu[n] = $9; r[n] = $9 / $6 }
        END { printf "%-6s | %9.0f, %10.2f | %9.0f, %10.2f | %.3f\n", s, median(orps, n), median(ocpu, n), median(nrps, n), median(ncpu, n), median(r, n) }
    ' "$RESULTS"
done
