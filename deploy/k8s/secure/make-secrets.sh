#!/usr/bin/env bash
# Makes what deploy/k8s/secure/kustomization.yaml generates its Secrets and ConfigMap from,
# into deploy/k8s/secure/secrets/ (git-ignored), or into the directory given:
#   - a CA and a server certificate for the specserve Service (openssl; replace them with
#     your issuer's, or with cert-manager's Secret, see kustomization.yaml),
#   - two API keys: client.key (predict:* and read) and prometheus.key (metrics),
#   - specserve.yaml: the base ConfigMap's config plus server.tls (the Secret's mount) and an
#     auth section holding only the keys' SHA-256 hashes; with JWKS_URL set, a jwt section too
#     (JWT_ISSUER and JWT_AUDIENCE then required).
#
#   NAMESPACE=serving deploy/k8s/secure/make-secrets.sh
#   kubectl apply -n serving -k deploy/k8s/secure
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/secrets}"
NAMESPACE="${NAMESPACE:-default}"
TLS_DIR=/etc/specserve-tls   # where deployment-tls.yaml mounts the specserve-tls Secret
mkdir -p "$OUT"
cd "$OUT"

# shellcheck source=../../secure-pki.sh
. "$HERE/../../secure-pki.sh"
make_pki specserve-k8s-ca "DNS:specserve,DNS:specserve.$NAMESPACE,DNS:specserve.$NAMESPACE.svc,DNS:specserve.$NAMESPACE.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
make_keys

# The base config: the block under `specserve.yaml: |` in ../base/configmap.yaml, unindented;
# server.tls added as the first key of its server section (by awk: a newline in a sed
# replacement is GNU sed's alone, BSD sed writes an `n`).
awk -v tls="  tls: { cert: $TLS_DIR/tls.crt, key: $TLS_DIR/tls.key }" '
  /^  specserve.yaml: \|$/ { inside = 1; next }
  inside && /^    / { line = substr($0, 5); print line; if (line == "server:") print tls; next }
  inside && NF { exit }' "$HERE/../base/configmap.yaml" >specserve.yaml
grep -q "^  tls: { cert: $TLS_DIR/tls.crt" specserve.yaml || { echo "make-secrets: could not add server.tls to the base config" >&2; exit 1; }
auth_section "the kubelet's probes" >>specserve.yaml
if [[ -n "${JWKS_URL:-}" ]]; then
  [[ -n "${JWT_ISSUER:-}" && -n "${JWT_AUDIENCE:-}" ]] || { echo "make-secrets: JWKS_URL needs JWT_ISSUER and JWT_AUDIENCE" >&2; exit 1; }
  printf '  jwt: { jwks_url: "%s", issuer: "%s", audience: "%s" }\n' "$JWKS_URL" "$JWT_ISSUER" "$JWT_AUDIENCE" >>specserve.yaml
fi
# ca.key signs certificates: it is not needed in the cluster, keep it out of the Secret's files
# (secure-pki.sh leaves it, and every other key, readable by its owner only).

echo "client API key: $(cat client.key)" >&2
echo "$OUT"
