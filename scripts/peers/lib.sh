# shellcheck shell=bash
# Shared by the peer provisioning scripts (sourced, not run). Each peer gets its own
# venv in the cache, rebuilt only when its pinned requirements change (a stamp file
# records what was installed). All pip chatter goes to stderr: stdout carries the
# one path the caller asked for.
set -euo pipefail

CACHE_DIR="${SPECSERVE_CACHE:-$HOME/.cache/specserve}"
PEERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034 # used by the scripts that source this file
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
  venv_ready "$py" "$stamp" "$want" "$check" && return 0
  mkdir -p "$CACHE_DIR"
  # Parallel callers serialize here; the second finds the venv ready.
  exec 9>"$CACHE_DIR/.$(basename "$venv").lock"
  flock 9
  if ! venv_ready "$py" "$stamp" "$want" "$check"; then
    # The stamp is written last, so a venv without one was interrupted (Ctrl-C, a CI
    # timeout) somewhere between `python3 -m venv` and the end of pip install: it may
    # lack pip or hold half a package. Start it over rather than patch it. A venv with a
    # stamp and pip is only out of date (a changed pin): pip install updates it in place.
    if [[ ! -f "$stamp" ]] || ! "$py" -m pip --version >/dev/null 2>&1; then
      echo "${0##*/}: creating venv at $venv" >&2
      rm -rf "$venv"
      python3 -m venv "$venv" >&2
    fi
    echo "${0##*/}: installing into $venv" >&2
    "$py" -m pip install --quiet --disable-pip-version-check "${reqs[@]}" >&2
    if ((${#nodeps[@]})); then
      "$py" -m pip install --quiet --disable-pip-version-check --no-deps "${nodeps[@]}" >&2
    fi
    "$py" -c "$check" >&2 || { echo "${0##*/}: venv at $venv is not usable" >&2; exit 1; }
    printf '%s\n' "$want" >"$stamp"
  fi
  exec 9>&-
}

# venv_ready PY STAMP WANT CHECK_IMPORTS: the venv holds exactly WANT and its imports work.
venv_ready() {
  [[ -x "$1" && -f "$2" && "$(cat "$2")" == "$3" ]] && "$1" -c "$4" >/dev/null 2>&1
}
