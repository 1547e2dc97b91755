#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seed inputs taken from the corpus and conformance suites
# (PORTCULLIS_SHARED, else ../shared next to the repository when present, else the repository's
# testdata/), and with real ClientHellos.
# Idempotent: seeds are named by content, so running it twice adds nothing. fuzz/corpus is
# git-ignored. Needs python3; PyYAML, when present, also turns YAML documents into JSON seeds
# for `decode`.
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
shared="${PORTCULLIS_SHARED:-$fuzz/../../shared}"
if [ -z "${PORTCULLIS_SHARED:-}" ] && [ ! -d "$shared/conformance" ]; then
    shared="$fuzz/../testdata"
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "seed.sh: python3 not found; corpora left as they are" >&2
    exit 0
fi
exec python3 - "$fuzz/corpus" "$shared" <<'PY'
import hashlib, json, os, random, re, ssl, sys

corpus, shared = sys.argv[1], sys.argv[2]
counts = {}

def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    if not data:
        return
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest())
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)
    counts[target] = counts.get(target, 0) + 1

texts = []
for sub in ("corpus", "conformance"):
    for root, _, files in os.walk(os.path.join(shared, sub)):
        for name in sorted(files):
            if name.endswith((".yaml", ".yml", ".json")):
                with open(os.path.join(root, name), "rb") as f:
                    texts.append((sub, f.read()))
if not texts:
    print(f"seed.sh: nothing under {shared}/corpus or {shared}/conformance", file=sys.stderr)

try:
    import yaml
except ImportError:
    yaml = None

durations, hosts, regexes, headers, docs = set(), set(), set(), set(), []
for sub, data in texts:
    if sub == "corpus" and len(data) <= 64 * 1024:
        put("loader", data)
        put("validate", data)
    text = data.decode("utf-8", "replace")
    durations.update(re.findall(r"\b\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)\b", text))
    hosts.update(re.findall(r"[A-Za-z0-9*][A-Za-z0-9*.-]*\.[A-Za-z]{2,}\b", text))
    hosts.update(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?\b", text))
    hosts.update(re.findall(r"\b[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?:/\d{1,3})?", text))
    for m in re.findall(r"regex:\s*(.+)", text):
        regexes.add(m.strip().strip("'\""))
    for k, v in re.findall(r"^\s+(x-[A-Za-z0-9-]+|:[a-z]+|@request[^:]*|[a-z-]+-id|user-agent|cookie|authorization):\s*(.*)$", text, re.M):
        headers.add(k + "\n" + v.strip().strip("'\""))
    if yaml is not None and sub == "corpus":
        try:
            for doc in yaml.safe_load_all(text):
                if isinstance(doc, dict):
                    docs.append(doc)
        except Exception:
            pass

for d in sorted(durations):
    put("duration", d)
for h in sorted(hosts):
    put("host", h)
for r in sorted(regexes):
    put("regex", r)
for h in sorted(headers):
    put("header", h)
for doc in docs:
    spec = doc.get("spec")
    if isinstance(spec, dict):
        try:
            put("decode", json.dumps(spec, default=str))
        except (TypeError, ValueError):
            pass

# Real ClientHellos from this machine's OpenSSL: several SNIs, ALPN lists and versions.
def client_hello(sni, alpn, version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.maximum_version = version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()

for sni in (None, "example.com", "A.Example.COM", "x" * 200):
    for alpn in ([], ["h2", "http/1.1"], ["istio-peer-exchange", "istio"]):
        for version in (None, ssl.TLSVersion.TLSv1_2):
            try:
                put("client_hello", client_hello(sni, alpn, version))
            except (ssl.SSLError, ValueError):
                pass

# Upstream responses for h1_response: 9 control bytes (method, split sizes), then the wire.
for control in (bytes(9), bytes([1, 3, 7, 1, 200, 5, 2, 9, 64])):
    for wire in (
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nt: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No Content\r\nconnection: keep-alive\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\nuntil close",
    ):
        put("h1_response", control + wire)

# Client requests for h1_request: 9 control bytes (header limit, split sizes), then the wire.
for control in (bytes([100]) + bytes(8), bytes([2, 3, 7, 1, 200, 5, 2, 9, 64])):
    for wire in (
        b"GET / HTTP/1.1\r\nhost: a\r\n\r\n",
        b"GET http://a.example/p?q=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /next",
        b"POST /up HTTP/1.1\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\nhello",
        b"PUT / HTTP/1.0\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n",
        b"GET /chat HTTP/1.1\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ):
        put("h1_request", control + wire)

# The structure-aware targets read their input through `arbitrary`: any bytes are a valid
# configuration, so a few deterministic random inputs of varied sizes give them a start.
rng = random.Random(6)
for target in ("pipeline", "matcher", "rewrite"):
    for size in (16, 64, 256, 1024, 4096):
        put(target, bytes(rng.randrange(256) for _ in range(size)))

for target in sorted(counts):
    print(f"seed.sh: {target}: {counts[target]} seeds")
PY
