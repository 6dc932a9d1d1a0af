#!/usr/bin/env bash
# Makes the interop suite's TLS files in DIR with openssl (never committed):
#
#   ca.pem, ca.key               the test CA (CN=Warren interop CA)
#   server.pem, server.key       CN=localhost, SAN DNS:localhost, IP:127.0.0.1, signed by ca.pem
#   client.pem, client.key       subject O=Warren tests, CN=alice, signed by ca.pem:
#                                its EXTERNAL user name is "CN=alice,O=Warren tests"
#   other-ca.pem, other-ca.key   a second, unrelated CA, for the "untrusted CA" checks
#
# Keys are unencrypted EC P-256 (PKCS#8), certificates valid for 2 days.
# Usage: tls-certs.sh DIR
set -euo pipefail

dir=${1:?usage: tls-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() {  # ca NAME SUBJECT
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -sha256 -days 2 -subj "$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.pem"
}

leaf() {  # leaf NAME SUBJECT EXTENSIONS
    key "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
    printf '%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 2 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca "/CN=Warren interop CA"
ca other-ca "/CN=Some other CA"
leaf server "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf client "/O=Warren tests/CN=alice" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
rm -f ca.srl
chmod 644 ./*.pem ./*.key  # the reference RabbitMQ runs as another user
