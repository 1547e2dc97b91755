#!/usr/bin/env bash
# TLS interoperability: the example gateway (portcullis-tls underneath) against real clients
# from Debian packages, `curl` and `openssl s_client`, on loopback only.
#
#   scripts/tls-interop.sh            # builds the gateway (release) if needed, then checks
#
# It installs `openssl` and `curl` with apt-get when they are missing, makes a throw-away PKI
# with openssl (a CA, a server certificate for two hosts and a wildcard, a client certificate
# from the CA, one from another CA, one revoked with a CRL), writes a gateway configuration
# (SIMPLE, MUTUAL with caCertificates + caCrl, OPTIONAL_MUTUAL, PASSTHROUGH by SNI to an
# `openssl s_server -www`, a ServiceEntry with a STATIC endpoint), starts the gateway and runs
# the checks. One line per check, then `N passed, M failed`; the exit status is 1 on a failure.
# Everything it starts is killed on exit; the whole run is bounded (a watchdog ends it).
# scripts/README.md ("TLS interoperability") lists the checks.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'tls-interop: %s\n' "$*"; }

# --- Tools ---------------------------------------------------------------------------------
missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if ((${#missing[@]})); then
    say "installing openssl and curl (missing: ${missing[*]})"
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq openssl curl >/dev/null
fi

# --- Cleanup and watchdog ------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tls-interop.XXXXXX")
pids=()
watchdog=
cleanup() {
    local status=$?
    {
        for pid in "${pids[@]}" $watchdog; do
            kill "$pid" || true
        done
        for pid in "${pids[@]}" $watchdog; do
            wait "$pid" || true
        done
    } 2>/dev/null
    if [ "${TLS_INTEROP_KEEP:-}" = 1 ]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
# Interrupted (or timed out): the unfinished run counts as one failure.
trap 'say "interrupted"; echo "${passed:-0} passed, $((${failed:-0} + 1)) failed"; exit 130' INT TERM
# --- The gateway binary --------------------------------------------------------------------
say "building the gateway (release)"
cargo build --release -q -p portcullis-examples --example gateway
built=$SECONDS
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
GATEWAY="${target_dir:-target}/release/examples/gateway"
[ -x "$GATEWAY" ] || {
    say "no gateway binary at $GATEWAY"
    exit 1
}

# The checks are bounded one by one (timeout 10 s each); this bounds the whole run (after the
# build) as well.
limit=${TLS_INTEROP_TIMEOUT:-120}
(
    trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep "$limit" &
    sleeper=$!
    wait "$sleeper"
    echo "tls-interop: timed out after ${limit}s" >&2
    kill -TERM $$ 2>/dev/null
) &
watchdog=$!

# --- Ports: six free loopback ports in a random window -------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=()
for _ in $(seq 50); do
    base=$((20000 + RANDOM % 30000))
    ports=()
    for p in $(seq "$base" $((base + 5))); do
        port_free "$p" && ports+=("$p")
    done
    ((${#ports[@]} == 6)) && break
done
((${#ports[@]} == 6)) || {
    say "no free ports"
    exit 1
}
P_HTTPS=${ports[0]}  # SIMPLE (a, b, *.wild) and PASSTHROUGH (pass) by SNI
P_MTLS=${ports[1]}   # MUTUAL with caCertificates and caCrl
P_OPT=${ports[2]}    # OPTIONAL_MUTUAL
P_PLAIN=${ports[3]}  # the plain HTTP upstream (a directResponse on a second Gateway)
P_UP=${ports[4]}     # the passthrough upstream: openssl s_server -www
P_ADMIN=${ports[5]}  # the gateway's admin listener

# --- PKI -----------------------------------------------------------------------------------
say "making certificates in $WORK"
cd "$WORK"
mkdir -p ca ca/newcerts other
: >ca/index.txt
echo 1000 >ca/serial
echo 1000 >ca/crlnumber
cat >ca.cnf <<EOF
[ca]
default_ca = interop_ca
[interop_ca]
dir = $WORK/ca
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir/newcerts
certificate = \$dir/ca.crt
private_key = \$dir/ca.key
default_md = sha256
default_days = 2
default_crl_days = 2
policy = policy_any
[policy_any]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:a.interop.test, DNS:b.interop.test, DNS:*.wild.interop.test, DNS:mtls.interop.test, DNS:opt.interop.test
authorityKeyIdentifier = keyid
[upstream]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:pass.interop.test
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://interop.test/ns/default/sa/client
authorityKeyIdentifier = keyid
EOF
ossl() { openssl "$@" >>"$WORK/openssl.log" 2>&1; }
ec_key() { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
# ca_cert DIR CN: a self-signed CA.
ca_cert() {
    ec_key "$1/ca.key"
    ossl req -x509 -new -key "$1/ca.key" -subj "/CN=$2" -days 2 -sha256 \
        -config ca.cnf -extensions v3_ca -out "$1/ca.crt"
}
# leaf NAME CN SECTION CADIR: NAME.key and NAME.crt signed by the CA in CADIR.
leaf() {
    [ -f "$1.key" ] || ec_key "$1.key"
    ossl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
    ossl x509 -req -in "$1.csr" -CA "$4/ca.crt" -CAkey "$4/ca.key" -CAcreateserial \
        -days 2 -sha256 -extfile ca.cnf -extensions "$3" -out "$1.crt"
}
ca_cert ca "Portcullis interop CA"
ca_cert other "Some other CA"
# The gateway's certificate has an RSA key (the common case); the clients' keys are ECDSA.
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server.key
leaf server "portcullis gateway" server ca
# The passthrough upstream's key is SEC1 with an EC PARAMETERS block (`openssl ecparam -genkey`).
ossl ecparam -genkey -name prime256v1 -out upstream.key
leaf upstream "passthrough upstream" upstream ca
leaf client "good client" client ca
leaf stranger "client of another CA" client other
leaf revoked "revoked client" client ca
ossl ca -config ca.cnf -revoke revoked.crt -crl_reason keyCompromise
ossl ca -config ca.cnf -gencrl -out ca.crl
cd - >/dev/null

# --- The passthrough upstream --------------------------------------------------------------
openssl s_server -quiet -www -accept "127.0.0.1:$P_UP" \
    -cert "$WORK/upstream.crt" -key "$WORK/upstream.key" >"$WORK/s_server.log" 2>&1 </dev/null &
pids+=($!)

# --- The gateway configuration -------------------------------------------------------------
mkdir -p "$WORK/config"
cat >"$WORK/config/interop.yaml" <<EOF
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: $P_HTTPS, name: https, protocol: HTTPS}
    bind: 127.0.0.1
    hosts: [a.interop.test, b.interop.test, "*.wild.interop.test"]
    tls:
      mode: SIMPLE
      serverCertificate: $WORK/server.crt
      privateKey: $WORK/server.key
  - port: {number: $P_HTTPS, name: tls-passthrough, protocol: TLS}
    bind: 127.0.0.1
    hosts: [pass.interop.test]
    tls: {mode: PASSTHROUGH}
  - port: {number: $P_MTLS, name: https-mtls, protocol: HTTPS}
    bind: 127.0.0.1
    hosts: [mtls.interop.test]
    tls:
      mode: MUTUAL
      serverCertificate: $WORK/server.crt
      privateKey: $WORK/server.key
      caCertificates: $WORK/ca/ca.crt
      caCrl: $WORK/ca.crl
  - port: {number: $P_OPT, name: https-optional, protocol: HTTPS}
    bind: 127.0.0.1
    hosts: [opt.interop.test]
    tls:
      mode: OPTIONAL_MUTUAL
      serverCertificate: $WORK/server.crt
      privateKey: $WORK/server.key
      caCertificates: $WORK/ca/ca.crt
      caCrl: $WORK/ca.crl
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: backend, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: $P_PLAIN, name: http-backend, protocol: HTTP}
    bind: 127.0.0.1
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: front, namespace: default}
spec:
  hosts: [a.interop.test, b.interop.test, "*.wild.interop.test", mtls.interop.test, opt.interop.test]
  gateways: [istio-system/edge]
  http:
  - route: [{destination: {host: plain.interop.internal, port: {number: 80}}}]
    headers:
      response:
        set: {x-interop: front}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: passthrough, namespace: default}
spec:
  hosts: [pass.interop.test]
  gateways: [istio-system/edge]
  tls:
  - match: [{port: $P_HTTPS, sniHosts: [pass.interop.test]}]
    route: [{destination: {host: pass.interop.upstream, port: {number: 443}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: backend, namespace: default}
spec:
  hosts: ["*"]
  gateways: [istio-system/backend]
  http:
  - directResponse:
      status: 200
      body: {string: "plain upstream ok\n"}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: plain, namespace: default}
spec:
  hosts: [plain.interop.internal]
  location: MESH_INTERNAL
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {http: $P_PLAIN}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: pass, namespace: default}
spec:
  hosts: [pass.interop.upstream]
  location: MESH_EXTERNAL
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {tls: $P_UP}}]
EOF

# --- Start the gateway ---------------------------------------------------------------------
say "starting $GATEWAY (ports $P_HTTPS $P_MTLS $P_OPT $P_PLAIN, admin $P_ADMIN, upstream $P_UP)"
"$GATEWAY" --workers 1 --admin "127.0.0.1:$P_ADMIN" --access-log stdout "$WORK/config" \
    >"$WORK/gateway.log" 2>&1 </dev/null &
gateway_pid=$!
pids+=("$gateway_pid")
ready=
for _ in $(seq 150); do
    if ! kill -0 "$gateway_pid" 2>/dev/null; then
        break
    fi
    if curl -fsS --max-time 1 "http://127.0.0.1:$P_ADMIN/ready" >/dev/null 2>&1 &&
        ! port_free "$P_HTTPS" && ! port_free "$P_MTLS" && ! port_free "$P_OPT" &&
        ! port_free "$P_PLAIN" && ! port_free "$P_UP"; then
        ready=1
        break
    fi
    sleep 0.2
done
if [ -z "$ready" ]; then
    say "the gateway (or the upstream) did not start; its output:"
    sed 's/^/  | /' "$WORK/gateway.log" "$WORK/s_server.log" >&2 || true
    echo "0 passed, 1 failed"
    exit 1
fi

# --- Checks --------------------------------------------------------------------------------
passed=0
failed=0
# check NAME EXPECTED SEEN: EXPECTED is a glob pattern SEEN must match.
check() {
    # shellcheck disable=SC2053 # the expectation is a pattern
    if [[ $3 == $2 ]]; then
        passed=$((passed + 1))
        printf 'PASS  %s: expected %s, saw %s\n' "$1" "$2" "$3"
    else
        failed=$((failed + 1))
        printf 'FAIL  %s: expected %s, saw %s\n' "$1" "$2" "$3"
    fi
}

# https HOST PORT [CURL ARGS...]: one GET of / with HOST resolved to loopback, trusting the
# CA. Prints "<status> HTTP/<version> <TLS version> <body>" or "refused (<curl's error>)".
https() {
    local host=$1 port=$2 out rc=0 tls body err
    shift 2
    out=$(timeout 10 curl -sS -v --max-time 8 -o "$WORK/body" \
        -w '%{http_code} HTTP/%{http_version}' \
        --resolve "$host:$port:127.0.0.1" --cacert "$WORK/ca/ca.crt" "$@" \
        "https://$host:$port/" 2>"$WORK/curl.err") || rc=$?
    if ((rc != 0)); then
        err=$(grep -m1 '^curl: ' "$WORK/curl.err" | sed 's/, errno [0-9]*$//' | cut -c1-140 || true)
        echo "refused (curl exit $rc: $err)"
        return
    fi
    tls=$(sed -n 's/.*SSL connection using \(TLSv[0-9.]*\).*/\1/p' "$WORK/curl.err" | head -n1 || true)
    body=$(head -c 60 "$WORK/body" | tr -s '\r\n' '  ' | sed 's/ *$//' || true)
    echo "$out ${tls:-TLS?} $body"
}

# s_client PORT [ARGS...]: a handshake with stdin closed; prints "ok <protocol> <subject>" or
# "refused (<the first SSL error or alert>)".
s_client() {
    local port=$1 rc=0 proto subject err
    shift
    timeout 10 openssl s_client -connect "127.0.0.1:$port" "$@" </dev/null \
        >"$WORK/s_client.out" 2>&1 || rc=$?
    proto=$(sed -n 's/^ *Protocol *: *\(.*\)$/\1/p; s/^New, \(TLSv[0-9.]*\), .*/\1/p' \
        "$WORK/s_client.out" | head -n1 || true)
    subject=$(sed -n 's/^subject=\(.*\)$/\1/p' "$WORK/s_client.out" | head -n1 || true)
    if ((rc == 0)) && [ -n "$subject" ]; then
        echo "ok $proto $subject"
    else
        err=$(grep -m1 -o 'alert [a-z ]*\|no peer certificate available\|errno=[0-9]*\|unexpected eof[a-z ]*' \
            "$WORK/s_client.out" | head -n1 || true)
        echo "refused (s_client exit $rc: ${err:-no handshake})"
    fi
}

OK_H2='200 HTTP/2 TLSv1.3 plain upstream ok'
cert=(--cert "$WORK/client.crt" --key "$WORK/client.key")
stranger=(--cert "$WORK/stranger.crt" --key "$WORK/stranger.key")
revoked=(--cert "$WORK/revoked.crt" --key "$WORK/revoked.key")

# SIMPLE: the hosts of the server, its wildcard, ALPN and the protocol versions.
check "SIMPLE a.interop.test (SNI a, curl, CA trusted)" "$OK_H2" "$(https a.interop.test "$P_HTTPS")"
check "SIMPLE b.interop.test (SNI b)" "$OK_H2" "$(https b.interop.test "$P_HTTPS")"
check "SIMPLE x.wild.interop.test (SNI under the wildcard host)" "$OK_H2" \
    "$(https x.wild.interop.test "$P_HTTPS")"
check "response from the STATIC ServiceEntry upstream through the route" "front" \
    "$(curl -sS --max-time 8 -o /dev/null -D - --resolve "a.interop.test:$P_HTTPS:127.0.0.1" \
        --cacert "$WORK/ca/ca.crt" "https://a.interop.test:$P_HTTPS/" 2>&1 |
        sed -n 's/^x-interop: *\([^[:space:]]*\).*/\1/p')"
check "HTTP/2 by ALPN (curl --http2)" "200 HTTP/2 *" "$(https a.interop.test "$P_HTTPS" --http2)"
check "HTTP/1.1 by ALPN (curl --http1.1)" "200 HTTP/1.1 *" \
    "$(https a.interop.test "$P_HTTPS" --http1.1)"
check "TLS 1.2 forced (curl --tlsv1.2 --tls-max 1.2)" "200 HTTP/2 TLSv1.2 *" \
    "$(https a.interop.test "$P_HTTPS" --tlsv1.2 --tls-max 1.2)"
check "TLS 1.3 forced (curl --tlsv1.3)" "200 HTTP/2 TLSv1.3 *" \
    "$(https a.interop.test "$P_HTTPS" --tlsv1.3)"
check "TLS 1.2 with openssl s_client -tls1_2" "ok TLSv1.2 *CN = portcullis gateway*" \
    "$(s_client "$P_HTTPS" -servername a.interop.test -tls1_2)"
check "TLS 1.3 with openssl s_client -tls1_3" "ok TLSv1.3 *CN = portcullis gateway*" \
    "$(s_client "$P_HTTPS" -servername a.interop.test -tls1_3)"
# OpenSSL 3 refuses TLS 1.1 itself at security level 1 and up; level 0 lets it offer 1.1, so
# the refusal seen is the gateway's (a protocol_version alert).
check "TLS 1.1-only client refused (openssl s_client -tls1_1)" "refused (*alert protocol version*)" \
    "$(s_client "$P_HTTPS" -servername a.interop.test -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')"

# Wrong SNI: as Envoy, no filter chain matches, so the connection is closed before a
# certificate is sent (no `*` server on the port).
check "unknown SNI refused (no filter chain)" "refused (*)" "$(https nobody.interop.test "$P_HTTPS" -k)"
check "SNI equal to the wildcard's bare suffix refused" "refused (*)" \
    "$(https wild.interop.test "$P_HTTPS" -k)"
check "no SNI refused (openssl s_client -noservername)" "refused (*)" \
    "$(s_client "$P_HTTPS" -noservername)"

# MUTUAL: caCertificates + caCrl.
check "MUTUAL good client certificate accepted" "$OK_H2" "$(https mtls.interop.test "$P_MTLS" "${cert[@]}")"
check "MUTUAL good certificate over TLS 1.2" "200 HTTP/2 TLSv1.2 *" \
    "$(https mtls.interop.test "$P_MTLS" "${cert[@]}" --tlsv1.2 --tls-max 1.2)"
check "MUTUAL without a client certificate refused" "refused (*certificate required*)" \
    "$(https mtls.interop.test "$P_MTLS")"
check "MUTUAL without a client certificate refused (TLS 1.2)" "refused (*alert*)" \
    "$(https mtls.interop.test "$P_MTLS" --tlsv1.2 --tls-max 1.2)"
check "MUTUAL certificate from another CA refused" "refused (*unknown ca*)" \
    "$(https mtls.interop.test "$P_MTLS" "${stranger[@]}")"
check "MUTUAL revoked certificate refused (caCrl)" "refused (*certificate revoked*)" \
    "$(https mtls.interop.test "$P_MTLS" "${revoked[@]}")"

# OPTIONAL_MUTUAL: no certificate is fine; a presented one must still be valid (Envoy).
check "OPTIONAL_MUTUAL without a client certificate accepted" "$OK_H2" \
    "$(https opt.interop.test "$P_OPT")"
check "OPTIONAL_MUTUAL good client certificate accepted" "$OK_H2" \
    "$(https opt.interop.test "$P_OPT" "${cert[@]}")"
check "OPTIONAL_MUTUAL certificate from another CA refused" "refused (*unknown ca*)" \
    "$(https opt.interop.test "$P_OPT" "${stranger[@]}")"
check "OPTIONAL_MUTUAL revoked certificate refused" "refused (*certificate revoked*)" \
    "$(https opt.interop.test "$P_OPT" "${revoked[@]}")"

# PASSTHROUGH: SNI routing to openssl s_server, whose certificate the client sees.
check "PASSTHROUGH s_client -servername pass.interop.test sees the upstream's certificate" \
    "ok TLSv1.3 *CN = passthrough upstream*" \
    "$(s_client "$P_HTTPS" -servername pass.interop.test -CAfile "$WORK/ca/ca.crt")"
check "PASSTHROUGH curl reaches s_server -www (HTTP/1.0 from the upstream)" \
    "200 HTTP/1* TLSv1.3 *" "$(https pass.interop.test "$P_HTTPS")"
check "SIMPLE still served on the passthrough port afterwards" "$OK_H2" \
    "$(https a.interop.test "$P_HTTPS")"

say "build ${built}s; certificates, start and checks $((SECONDS - built))s"
echo "$passed passed, $failed failed"
if ((failed > 0)); then
    say "gateway log (last 20 lines):"
    tail -n 20 "$WORK/gateway.log" | sed 's/^/  | /'
    exit 1
fi
