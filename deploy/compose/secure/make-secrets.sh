#!/usr/bin/env bash
# Makes what docker-compose.secure.yml mounts, into deploy/compose/secure/secrets/ (git-ignored):
# a CA and a server certificate for the specserve service (openssl), two API keys (one for
# clients, one for Prometheus), and the gateway config: deploy/compose/specserve.yaml plus
# server.tls and an auth section holding only the keys' SHA-256 hashes. Prints the client key.
#
#   deploy/compose/secure/make-secrets.sh
#   docker compose -f deploy/docker-compose.yml -f deploy/docker-compose.secure.yml up --build
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/secrets}"
mkdir -p "$OUT"
cd "$OUT"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 365 -subj /CN=specserve-compose-ca 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout tls.key -out tls.csr -subj /CN=specserve 2>/dev/null
printf 'subjectAltName=DNS:specserve,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >tls.ext
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days 90 -extfile tls.ext 2>/dev/null
rm -f tls.csr tls.ext ca.srl
# The server reads its key as uid 1000 in the container.
chmod 644 tls.key

openssl rand -hex 24 >client.key
openssl rand -hex 24 >prometheus.key
hash() { printf %s "$(cat "$1")" | sha256sum | cut -d' ' -f1; }

# The compose config, with TLS added to its server line and an auth section after it.
sed -E 's|^(server: \{.*[^ ]) *\}$|\1, tls: { cert: /run/secrets/tls.crt, key: /run/secrets/tls.key } }|' "$HERE/../specserve.yaml" >specserve.yaml
grep -q 'tls: { cert: /run/secrets/tls.crt' specserve.yaml || { echo "make-secrets: could not add server.tls to specserve.yaml" >&2; exit 1; }
cat >>specserve.yaml <<YAML
auth:
  api_keys:
    - { id: client, sha256: "$(hash client.key)", scopes: ["predict:*", "read"] }
    - { id: prometheus, sha256: "$(hash prometheus.key)", scopes: ["metrics"] }
  anonymous: [health]
  rate_limit: { rps: 500, burst: 1000 }
YAML

echo "client API key: $(cat client.key)" >&2
echo "$OUT"
