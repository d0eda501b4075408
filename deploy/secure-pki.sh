# shellcheck shell=bash
# Sourced by deploy/compose/secure/make-secrets.sh and deploy/k8s/secure/make-secrets.sh: what
# both secure variants make, in the current directory.

# quietly COMMAND...: runs it with its output held back; shows it, on stderr, only when it fails
# (openssl reports what went wrong there: a bad subject, an unknown curve, an unwritable file).
quietly() {
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    echo "${0##*/}: failed: $*" >&2
    return 1
  fi
}

# make_pki CA_CN SUBJECT_ALT_NAMES: a CA (ca.crt, ca.key) and a server certificate for
# CN=specserve signed by it (tls.crt, tls.key), EC P-256, for those names.
make_pki() {
  rm -f ca.key tls.key # a key file already there would keep its mode
  quietly openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 365 -subj "/CN=$1"
  quietly openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout tls.key -out tls.csr -subj /CN=specserve
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$2" >tls.ext
  quietly openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days 90 -extfile tls.ext
  rm -f tls.csr tls.ext ca.srl
  chmod 600 ca.key tls.key # whatever the openssl: a caller that mounts tls.key opens it up as far as it must
}

# make_keys: two API keys, client.key (predict:* and read) and prometheus.key (metrics), readable
# by their owner only (a caller that mounts one into a container opens it up as far as it must).
make_keys() {
  rm -f client.key prometheus.key
  (
    umask 077
    openssl rand -hex 24 >client.key
    openssl rand -hex 24 >prometheus.key
  )
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

# key_hash FILE: the SHA-256, in hex, of what the file holds less its final newline (sha256sum, or macOS's shasum).
key_hash() {
  if command -v sha256sum >/dev/null; then
    printf %s "$(cat "$1")" | sha256sum | cut -d' ' -f1
  else
    printf %s "$(cat "$1")" | shasum -a 256 | cut -d' ' -f1
  fi
}
