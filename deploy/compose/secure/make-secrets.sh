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
# Some keys must be readable by a container's user (below): the directory keeps everyone else on
# this host out (700; the containers get the files, never the directory). One this script creates,
# or its default one; a directory given that exists already keeps its mode.
if [[ ! -d "$OUT" || -z "${1:-}" ]]; then
  mkdir -p "$OUT"
  chmod 700 "$OUT"
fi
cd "$OUT"

# shellcheck source=../../secure-pki.sh
. "$HERE/../../secure-pki.sh"
make_pki specserve-compose-ca DNS:specserve,DNS:localhost,IP:127.0.0.1
make_keys

# Compose mounts a `file:` secret as a bind mount of the file itself: the container sees this
# host's owner, group and mode (a secret's uid/gid/mode apply in Swarm only, not to files). The
# keys secure-pki.sh made are readable by their owner only; a key a container reads is opened
# up, as little as this host allows:
#   readable_by FILE UID GID   owner-only if this user is UID; else group-readable if the file
#                              can be given group GID (as root, or a member of it); else
#                              world-readable, said on stderr (the directory still shuts out
#                              this host's other users).
# With rootless Docker or userns-remap the container's uids are shifted: `chmod 644` the file.
readable_by() {
  if [[ "$(id -u)" == "$2" ]]; then
    chmod 600 "$1"
  elif chgrp "$3" "$1" 2>/dev/null; then
    chmod 640 "$1"
  else
    chmod 644 "$1"
    echo "make-secrets: $1 is world-readable (644): the container reads it as uid $2, and this user" \
      "can neither be that user nor give the file group $3 (as root: chgrp $3 $OUT/$1 && chmod 640 $OUT/$1)" >&2
  fi
}
# The gateway reads tls.key as the image's user, 1000:1000.
readable_by tls.key 1000 1000
# Prometheus (prom/prometheus runs as nobody) reads its key; it grants the metrics scope only.
chmod 644 prometheus.key

# The compose config, with TLS added to its server line and an auth section after it.
mkdir -p specserve
sed -E 's|^(server: \{.*[^ ]) *\}$|\1, tls: { cert: /run/secrets/tls.crt, key: /run/secrets/tls.key } }|' "$HERE/../specserve/specserve.yaml" >specserve/specserve.yaml
grep -q 'tls: { cert: /run/secrets/tls.crt' specserve/specserve.yaml || { echo "make-secrets: could not add server.tls to specserve.yaml" >&2; exit 1; }
auth_section "the healthcheck" >>specserve/specserve.yaml

echo "client API key: $(cat client.key)" >&2
echo "$OUT"
