# Shared by the proof scripts (bench-vs-nginx.sh, swap-under-load.sh, fault.sh): sourced after
# ROOT, GATEWAY and SKIP_BUILD are set.

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
