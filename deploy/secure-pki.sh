# shellcheck shell=bash
# Sourced by deploy/compose/secure/make-secrets.sh and deploy/k8s/secure/make-secrets.sh: what
# both secure variants make, in the current directory.

# make_pki CA_CN SUBJECT_ALT_NAMES: a CA (ca.crt, ca.key) and a server certificate for
# CN=specserve signed by it (tls.crt, tls.key), EC P-256, for those names.
make_pki() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 365 -subj "/CN=$1" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout tls.key -out tls.csr -subj /CN=specserve 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$2" >tls.ext
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days 90 -extfile tls.ext 2>/dev/null
  rm -f tls.csr tls.ext ca.srl
}

# make_keys: two API keys, client.key (predict:* and read) and prometheus.key (metrics).
make_keys() {
  openssl rand -hex 24 >client.key
  openssl rand -hex 24 >prometheus.key
}

# auth_section ANONYMOUS_COMMENT: the gateway's auth section for those keys: their SHA-256 hashes only.
auth_section() {
  cat <<YAML
auth:
  api_keys:
    - { id: client, sha256: "$(key_hash client.key)", scopes: ["predict:*", "read"] }
    - { id: prometheus, sha256: "$(key_hash prometheus.key)", scopes: ["metrics"] }
  anonymous: [health]            # $1
  rate_limit: { rps: 500, burst: 1000 }
YAML
}

key_hash() { printf %s "$(cat "$1")" | sha256sum | cut -d' ' -f1; }
