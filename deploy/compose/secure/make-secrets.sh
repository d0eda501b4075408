#!/usr/bin/env bash
# Makes what docker-compose.secure.yml mounts, into deploy/compose/secure/secrets/ (git-ignored):
# a CA and a server certificate for the specserve service (openssl), two API keys (one for
# clients, one for Prometheus), and the gateway config: deploy/compose/specserve/specserve.yaml
# plus server.tls and an auth section holding only the keys' SHA-256 hashes, in a directory of
# its own (specserve/: the compose file mounts that directory, and nothing else from here, as
# the container's /etc/specserve). Prints the client key.
#
#   deploy/compose/secure/make-secrets.sh
#   docker compose -f deploy/docker-compose.yml -f deploy/docker-compose.secure.yml up --build
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/secrets}"
mkdir -p "$OUT"
cd "$OUT"

# shellcheck source=../../secure-pki.sh
. "$HERE/../../secure-pki.sh"
make_pki specserve-compose-ca DNS:specserve,DNS:localhost,IP:127.0.0.1
# The server reads its key as uid 1000 in the container.
chmod 644 tls.key

make_keys

# The compose config, with TLS added to its server line and an auth section after it.
mkdir -p specserve
sed -E 's|^(server: \{.*[^ ]) *\}$|\1, tls: { cert: /run/secrets/tls.crt, key: /run/secrets/tls.key } }|' "$HERE/../specserve/specserve.yaml" >specserve/specserve.yaml
grep -q 'tls: { cert: /run/secrets/tls.crt' specserve/specserve.yaml || { echo "make-secrets: could not add server.tls to specserve.yaml" >&2; exit 1; }
auth_section "the healthcheck" >>specserve/specserve.yaml

echo "client API key: $(cat client.key)" >&2
echo "$OUT"
