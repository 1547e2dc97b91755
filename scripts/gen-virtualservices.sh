#!/usr/bin/env bash
# Writes the "configuration at scale" scenario of Portcullis issue #20: N VirtualServices
# (default 10,000) bound to ONE Gateway, two routes each (so 2N routes), split over ten files,
# and the one upstream they all route to (a ServiceEntry with a STATIC endpoint).
#
#   scripts/gen-virtualservices.sh DIR              # 10,000 VirtualServices
#   N=20 scripts/gen-virtualservices.sh DIR
#
# DIR/gateway.yaml   the Gateway (HTTP on BIND:PORT, hosts "*") and the ServiceEntry
#                    backend.scale.local → BACKEND_ADDR:BACKEND_PORT
# DIR/vs-0.yaml … DIR/vs-9.yaml
#                    VirtualService vs-I for host vs-I.scale.local: route "api" (prefix /api/,
#                    rewritten to /) and route "default" (everything else), both to the backend
#
# Settings (environment): N (10000), FILES (10), BIND (127.0.0.1), PORT (18280),
# BACKEND_ADDR (127.0.0.1), BACKEND_PORT (18080), NAMESPACE (istio-system).
set -euo pipefail

DIR=${1:?usage: gen-virtualservices.sh DIR}
N=${N:-10000}
FILES=${FILES:-10}
BIND=${BIND:-127.0.0.1}
PORT=${PORT:-18280}
BACKEND_ADDR=${BACKEND_ADDR:-127.0.0.1}
BACKEND_PORT=${BACKEND_PORT:-18080}
NAMESPACE=${NAMESPACE:-istio-system}
[[ "$N" =~ ^[1-9][0-9]*$ && "$FILES" =~ ^[1-9][0-9]*$ ]] || {
    echo "N and FILES are positive whole numbers" >&2
    exit 2
}

mkdir -p "$DIR"
rm -f "$DIR"/vs-*.yaml
cat >"$DIR/gateway.yaml" <<YAML
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: scale-gateway
  namespace: $NAMESPACE
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: $PORT, name: http, protocol: HTTP}
    bind: $BIND
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: backend
  namespace: $NAMESPACE
spec:
  hosts: [backend.scale.local]
  location: MESH_EXTERNAL
  ports:
  - {number: $BACKEND_PORT, name: http, protocol: HTTP}
  resolution: STATIC
  endpoints:
  - address: $BACKEND_ADDR
YAML

# One awk pass writes every file (a shell loop of 10,000 heredocs is slow).
awk -v n="$N" -v files="$FILES" -v dir="$DIR" -v ns="$NAMESPACE" -v bport="$BACKEND_PORT" 'BEGIN {
    for (i = 0; i < n; i++) {
        f = dir "/vs-" (i % files) ".yaml"
        if (seen[f]++) printf "---\n" > f
        printf "apiVersion: networking.istio.io/v1\nkind: VirtualService\n" > f
        printf "metadata:\n  name: vs-%d\n  namespace: %s\n", i, ns > f
        printf "spec:\n  hosts: [vs-%d.scale.local]\n  gateways: [%s/scale-gateway]\n", i, ns > f
        printf "  http:\n" > f
        printf "  - name: api\n    match:\n    - uri: {prefix: /api/}\n    rewrite: {uri: /}\n" > f
        printf "    route:\n    - destination: {host: backend.scale.local, port: {number: %d}}\n", bport > f
        printf "  - name: default\n" > f
        printf "    route:\n    - destination: {host: backend.scale.local, port: {number: %d}}\n", bport > f
    }
}'
echo "$DIR: 1 Gateway, 1 ServiceEntry, $N VirtualServices ($((2 * N)) routes) in $(ls "$DIR"/vs-*.yaml | wc -l) files" >&2
