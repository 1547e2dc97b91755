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
