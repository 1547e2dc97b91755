#!/usr/bin/env bash
# Times `portcullis test` on generated input: VS VirtualServices (default 1000), each bound to
# one Gateway with four rules, and one istio-config-validator test case per VirtualService
# unfolding to PER inputs (default 10: 2 methods x 5 URIs, so 10 000 inputs). Run it twice,
# PER=10 and PER=20, to see that doubling the inputs at most doubles the time. Also times
# `portcullis analyze` over testdata/corpus.
#
#   cargo build --release -p portcullis-cli
#   scripts/cli-scale.sh            # PER=10
#   PER=20 scripts/cli-scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PORTCULLIS:-target/release/portcullis}
vs=${VS:-1000}
per=${PER:-10}
uris=$((per / 2))
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

{
  cat <<'YAML'
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
YAML
  for i in $(seq 1 "$vs"); do
    cat <<YAML
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-$i, namespace: team-$((i % 50))}
spec:
  hosts: [svc-$i.example.com]
  gateways: [istio-system/public]
  http:
  - match: [{uri: {prefix: /api/v2}}]
    rewrite: {uri: /v2}
    route: [{destination: {host: api-$i, port: {number: 8080}}}]
  - match: [{uri: {regex: "/items/[0-9]+"}, method: {regex: "GET|HEAD"}}]
    route: [{destination: {host: items-$i, subset: v1}}]
  - match: [{headers: {x-canary: {exact: "1"}}}]
    route: [{destination: {host: web-$i, subset: v2}}]
  - route: [{destination: {host: web-$i}}]
YAML
  done
} > "$dir/config.yaml"

{
  echo "testCases:"
  for i in $(seq 1 "$vs"); do
    list=""
    for u in $(seq 1 "$uris"); do list="$list\"/items/$u\", "; done
    cat <<YAML
- description: items of svc-$i
  wantMatch: true
  request:
    authority: [svc-$i.example.com]
    method: [GET, HEAD]
    uri: [${list%, }]
  cluster: outbound|80|v1|items-$i.team-$((i % 50)).svc.cluster.local
YAML
  done
} > "$dir/tests.yaml"

# timed OUTPUT COMMAND...: runs COMMAND with its output in OUTPUT, then prints the time.
timed() {
  local out=$1
  shift
  /usr/bin/time -o "$dir/time" -f "wall %e s, max RSS %M KiB" "$@" > "$out" 2>&1 || true
  cat "$dir/time"
}
echo "== portcullis test: $vs VirtualServices, $((vs * per)) inputs"
timed "$dir/out" "$bin" test -t "$dir/tests.yaml" "$dir/config.yaml"
tail -1 "$dir/out"
echo "== portcullis analyze testdata/corpus"
timed /dev/null "$bin" analyze testdata/corpus
