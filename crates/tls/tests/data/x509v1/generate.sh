#!/usr/bin/env bash
# Regenerates the X.509 version-1 fixtures of this folder with openssl (1.1.1 or 3.x).
#
# The leaves are made the way Istio's "Secure Gateways" task makes them: a CSR signed with
# `openssl x509 -req` and no extension file, which gives version-1 certificates. The expired and
# not-yet-valid leaves need fixed dates, which `openssl x509` (before 3.4) cannot set, so they come
# from `openssl ca` with no extension section, which also gives version 1.
#
#   ca          v3 CA, as `openssl req -x509` makes it (Istio's docs: example.com)
#   ca-v1       v1 CA (self-signed with `openssl x509 -req -signkey`)
#   other-ca    v3 CA that signs nothing the tests trust
#   int         v3 intermediate CA signed by ca (basicConstraints CA:TRUE)
#   int-v1      v1 certificate signed by ca, used as if it were an intermediate CA
#   server      v1 leaf for v1.example.com, signed by ca
#   client      v1 client leaf, signed by ca
#   client-cav1 v1 client leaf, signed by ca-v1
#   client-other    v1 client leaf, signed by other-ca
#   client-int      v1 client leaf, signed by int
#   client-intv1    v1 client leaf, signed by int-v1
#   client-expired  v1 client leaf, ca, valid 2000-01-01 .. 2001-01-01
#   client-future   v1 client leaf, ca, valid 2300-01-01 .. 2301-01-01
#   client-revoked  v1 client leaf, ca, listed in ca.crl
#   ca.crl      CRL v2 of ca listing client-revoked
#   other.crl   CRL v2 of other-ca listing client's serial (must not revoke client)
#
# Run from anywhere: bash crates/tls/tests/data/x509v1/generate.sh
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
days=36500

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
csr() { openssl req -new -key "$1" -subj "$2" -out "$work/$3.csr"; }

# CAs
openssl req -x509 -sha256 -nodes -days "$days" -newkey rsa:2048 \
    -subj '/O=example Inc./CN=example.com' -keyout ca.key -out ca.pem 2>/dev/null
openssl req -x509 -sha256 -nodes -days "$days" -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -subj '/O=other Inc./CN=other.example' -keyout other-ca.key -out other-ca.pem 2>/dev/null
ec_key ca-v1.key
csr ca-v1.key '/O=v1 Inc./CN=v1 root' ca-v1
openssl x509 -req -sha256 -days "$days" -in "$work/ca-v1.csr" -signkey ca-v1.key -out ca-v1.pem 2>/dev/null

# A v3 intermediate, and a v1 certificate pretending to be one
ec_key int.key
csr int.key '/O=example Inc./CN=example intermediate' int
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' > "$work/int.ext"
openssl x509 -req -sha256 -days "$days" -in "$work/int.csr" -CA ca.pem -CAkey ca.key \
    -set_serial 0x10 -extfile "$work/int.ext" -out int.pem 2>/dev/null
ec_key int-v1.key
csr int-v1.key '/O=example Inc./CN=v1 intermediate' int-v1
openssl x509 -req -sha256 -days "$days" -in "$work/int-v1.csr" -CA ca.pem -CAkey ca.key \
    -set_serial 0x11 -out int-v1.pem 2>/dev/null

# Leaves signed with `openssl x509 -req`, as in Istio's docs
leaf() { # name subject ca serial
    ec_key "$1.key"
    csr "$1.key" "$2" "$1"
    openssl x509 -req -sha256 -days "$days" -in "$work/$1.csr" -CA "$3.pem" -CAkey "$3.key" \
        -set_serial "$4" -out "$1.pem" 2>/dev/null
}
leaf server '/O=v1 org/CN=v1.example.com' ca 0x20
leaf client '/O=client org/CN=client.example.com' ca 0x21
leaf client-cav1 '/O=client org/CN=client of v1 root' ca-v1 0x22
leaf client-other '/O=client org/CN=client of other' other-ca 0x21
leaf client-int '/O=client org/CN=client of int' int 0x23
leaf client-intv1 '/O=client org/CN=client of v1 int' int-v1 0x24

# Leaves with fixed dates, and the CRLs, from `openssl ca`
ca_conf() { # dir ca first-serial
    mkdir -p "$work/$1"
    : > "$work/$1/index.txt"
    echo 1000 > "$work/$1/crlnumber"
    echo "$3" > "$work/$1/serial"
    cat > "$work/$1/ca.cnf" <<CNF
[ ca ]
default_ca = this
[ this ]
database = $work/$1/index.txt
new_certs_dir = $work/$1
certificate = $PWD/$2.pem
private_key = $PWD/$2.key
crlnumber = $work/$1/crlnumber
serial = $work/$1/serial
default_md = sha256
default_crl_days = $days
policy = any
unique_subject = no
[ any ]
commonName = supplied
organizationName = optional
CNF
}
ca_conf db-ca ca 30
ca_conf db-other other-ca 21
dated() { # name subject start end
    ec_key "$1.key"
    csr "$1.key" "$2" "$1"
    openssl ca -batch -config "$work/db-ca/ca.cnf" -notext -in "$work/$1.csr" -out "$1.pem" \
        -startdate "$3" -enddate "$4" -preserveDN 2>/dev/null
}
dated client-expired '/O=client org/CN=expired client' 20000101000000Z 20010101000000Z
dated client-future '/O=client org/CN=future client' 23000101000000Z 23010101000000Z
dated client-revoked '/O=client org/CN=revoked client' 20200101000000Z 22000101000000Z
openssl ca -config "$work/db-ca/ca.cnf" -revoke client-revoked.pem 2>/dev/null
openssl ca -config "$work/db-ca/ca.cnf" -gencrl -out ca.crl 2>/dev/null
# other-ca revokes its own leaf with the same serial as `client`
cp client-other.pem "$work/client-other.pem"
openssl ca -config "$work/db-other/ca.cnf" -valid "$work/client-other.pem" 2>/dev/null
openssl ca -config "$work/db-other/ca.cnf" -revoke "$work/client-other.pem" 2>/dev/null
openssl ca -config "$work/db-other/ca.cnf" -gencrl -out other.crl 2>/dev/null
rm -f other-ca.key.srl ca.srl ca.key.srl int.srl int-v1.srl

for f in *.pem; do
    printf '%-20s %s\n' "$f" "$(openssl x509 -in "$f" -noout -text | sed -n 's/^ *Version: *//p')"
done
