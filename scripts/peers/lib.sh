# Shared by the peer provisioning scripts (sourced, not run). Each peer gets its own
# venv in the cache, rebuilt only when its pinned requirements change (a stamp file
# records what was installed). All pip chatter goes to stderr: stdout carries the
# one path the caller asked for.
set -euo pipefail

CACHE_DIR="${SPECSERVE_CACHE:-$HOME/.cache/specserve}"
PEERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$PEERS_DIR/../.." && pwd)"

# ensure_venv DIR CHECK_IMPORTS REQUIREMENT... [-- NODEPS_REQUIREMENT...]
# Creates or reuses the venv at DIR; CHECK_IMPORTS is a Python import line that must succeed.
# Requirements after `--` are installed with --no-deps (see tfserving-standin.sh for why).
ensure_venv() {
  local venv="$1" check="$2"
  shift 2
  local reqs=() nodeps=() seen_sep=0
  for r in "$@"; do
    if [[ "$r" == "--" ]]; then seen_sep=1; continue; fi
    if ((seen_sep)); then nodeps+=("$r"); else reqs+=("$r"); fi
  done
  local py="$venv/bin/python" stamp="$venv/.specserve-requirements"
  local want
  want="$(printf '%s\n' "${reqs[@]}" -- "${nodeps[@]}")"
  if [[ -x "$py" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && "$py" -c "$check" >/dev/null 2>&1; then
    return 0
  fi
  mkdir -p "$CACHE_DIR"
  if [[ ! -x "$py" ]] || ! "$py" -c 'import sys' >/dev/null 2>&1; then
    echo "peers: creating venv at $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
  fi
  echo "peers: installing into $venv" >&2
  "$py" -m pip install --quiet --disable-pip-version-check "${reqs[@]}" >&2
  if ((${#nodeps[@]})); then
    "$py" -m pip install --quiet --disable-pip-version-check --no-deps "${nodeps[@]}" >&2
  fi
  printf '%s\n' "$want" >"$stamp"
  "$py" -c "$check" >&2 || { echo "peers: venv at $venv is not usable" >&2; exit 1; }
}
