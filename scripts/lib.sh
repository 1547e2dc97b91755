# Shared by the proof and benchmark scripts: sourced after ROOT, GATEWAY and SKIP_BUILD are set.

log() { printf '== %s\n' "$*" >&2; }

# install_missing COMMAND:PACKAGE... — installs the Debian packages of the commands that are
# missing (`apt-get update` once, then `apt-get install -y`; root, or sudo). `nginx` also counts
# as present at /usr/sbin/nginx. Sets NGINX to nginx's path.
install_missing() {
    local need=() pair cmd pkg
    for pair in "$@"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 && continue
        [[ "$cmd" == nginx && -x /usr/sbin/nginx ]] && continue
        need+=("$pkg")
    done
    if ((${#need[@]})); then
        log "installing ${need[*]} (Debian packages)"
        local sudo=""
        [[ $(id -u) -eq 0 ]] || sudo="sudo"
        $sudo apt-get update -qq
        # policy-rc.d in containers keeps the packaged nginx service from starting; nothing
        # here relies on that service.
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    NGINX=$(command -v nginx || echo /usr/sbin/nginx)
}

# build_gateway — the example gateway in release, unless SKIP_BUILD=1; fails without a binary.
build_gateway() {
    if [[ "$SKIP_BUILD" != 1 ]]; then
        log "building the gateway (release)"
        (cd "$ROOT" && cargo build --release -q -p portcullis-examples --example gateway)
    fi
    [[ -x "$GATEWAY" ]] || { echo "no gateway binary at $GATEWAY" >&2; exit 1; }
}

# port_free PORT — nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT — waits up to 10 s for a listener on 127.0.0.1:PORT; fails naming $RUN's logs.
wait_port() {
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1; logs in ${RUN:-?}" >&2
    return 1
}

# stop_started — TERM, then KILL, every process in the PIDS array.
stop_started() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.3
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

# cpu_ticks PID — CPU ticks (user + system, in CLK_TCK units) of a process and its children
# processes (nginx's worker).
cpu_ticks() {
    local total=0 pid f
    for pid in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
        f=$(cut -d')' -f2- "/proc/$pid/stat" 2>/dev/null) || continue
        # After the command: state is field 1, utime field 12, stime field 13.
        total=$((total + $(awk '{print $12 + $13}' <<<"$f")))
    done
    echo "$total"
}

# rss_kib PID — resident KiB (VmRSS) of a process and its children.
rss_kib() {
    local total=0 pid kib
    for pid in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
        kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

# idle_cost PID PORT MODE N — bytes of resident memory one idle keep-alive connection costs
# the proxy PID listening on 127.0.0.1:PORT: N connections (MODE h1 or h2c) each with one
# request answered and then held idle by scripts/bench/idle_clients.py; RSS once all are idle
# minus before, over N. Prints "-" (and a warning) when the clients fail. Uses $BENCH and $RUN.
idle_cost() {
    local pid=$1 port=$2 mode=$3 n=$4 before after fifo client
    # A few connections first, so that what the first requests set up once is not counted.
    python3 "$BENCH/idle_clients.py" 127.0.0.1 "$port" 20 "$mode" </dev/null >/dev/null
    sleep 0.5
    before=$(rss_kib "$pid")
    fifo="$RUN/hold.$mode.$port"
    mkfifo "$fifo"
    python3 "$BENCH/idle_clients.py" 127.0.0.1 "$port" "$n" "$mode" <"$fifo" >"$fifo.out" &
    client=$!
    exec 7>"$fifo"
    for _ in $(seq 600); do
        grep -q '^ready' "$fifo.out" 2>/dev/null && break
        kill -0 "$client" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q "^ready $n" "$fifo.out"; then
        echo "warning: idle clients failed against port $port ($mode)" >&2
        exec 7>&-
        wait "$client" 2>/dev/null || true
        rm -f "$fifo" "$fifo.out"
        echo "-"
        return
    fi
    sleep 1
    after=$(rss_kib "$pid")
    exec 7>&-
    wait "$client" || true
    rm -f "$fifo" "$fifo.out"
    sleep 0.5
    echo $(((after - before) * 1024 / n))
}

# bench_cert DIR — a self-signed EC P-256 certificate for localhost and 127.0.0.1 as the
# credential `bench-cert`: DIR/bench-cert/tls.crt and tls.key (what `--credentials DIR` serves),
# the same one for every proxy a benchmark compares.
bench_cert() {
    mkdir -p "$1/bench-cert"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$1/bench-cert/tls.key" -out "$1/bench-cert/tls.crt" 2>/dev/null
}
