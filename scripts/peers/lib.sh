# shellcheck shell=bash
# Shared by the peer provisioning scripts (sourced, not run). Each peer gets its own
# venv in the cache, built from hash locks (scripts/peers/locks/, written by lock.sh) and
# rebuilt only when they change (a stamp file records what was installed). All pip chatter
# goes to stderr: stdout carries the one path the caller asked for.
set -euo pipefail

CACHE_DIR="${SPECSERVE_CACHE:-$HOME/.cache/specserve}"
PEERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$PEERS_DIR/../.." && pwd)"

# ensure_venv DIR CHECK_IMPORTS LOCK...
# Creates or reuses the venv at DIR holding exactly the LOCK files' packages (installed in
# order); CHECK_IMPORTS is a Python import line that must succeed. Each lock is installed with
# --require-hashes --no-deps: pip takes no package and no bytes the lock does not name, so a
# new release of anything cannot change a fresh machine's venv. --no-build-isolation: an sdist
# the lock names is built with the venv's own setuptools (locks/build-tools.txt, listed first),
# never with the newest one pip would fetch unpinned for an isolated build. pip and setuptools
# themselves come with the Python install (ensurepip), unless a lock pins them.
ensure_venv() {
  local venv="$1" check="$2"
  shift 2
  local locks=("$@") lock
  for lock in "${locks[@]}"; do
    [[ -f "$lock" ]] || { echo "${0##*/}: no lock file $lock" >&2; exit 1; }
  done
  local py="$venv/bin/python" stamp="$venv/.specserve-requirements"
  local want
  want="locks sha256 $(cat "${locks[@]}" | sha256sum | cut -d' ' -f1)"
  venv_ready "$py" "$stamp" "$want" "$check" && return 0
  mkdir -p "$CACHE_DIR"
  # Parallel callers serialize here; the second finds the venv ready.
  exec 9>"$CACHE_DIR/.$(basename "$venv").lock"
  flock 9
  if ! venv_ready "$py" "$stamp" "$want" "$check"; then
    # Not ready: never built, interrupted (the stamp is written last, so a Ctrl-C or CI timeout
    # anywhere before leaves none), built from other locks (or by the pin lists before them),
    # or broken. Each time, start over: pip would update changed pins in place but never remove
    # a package the new lock dropped, and the venv must hold its lock, no more. A rebuild takes
    # what it can from pip's download cache.
    echo "${0##*/}: creating venv at $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    for lock in "${locks[@]}"; do
      echo "${0##*/}: installing ${lock#"$REPO_DIR"/} into $venv" >&2
      "$py" -m pip install --quiet --disable-pip-version-check \
        --require-hashes --no-deps --no-build-isolation -r "$lock" >&2
    done
    "$py" -c "$check" >&2 || { echo "${0##*/}: venv at $venv is not usable" >&2; exit 1; }
    printf '%s\n' "$want" >"$stamp"
  fi
  exec 9>&-
}

# venv_ready PY STAMP WANT CHECK_IMPORTS: the venv was built from the locks WANT names and its
# imports work (no network: an unchanged lock is reused as is).
venv_ready() {
  [[ -x "$1" && -f "$2" && "$(cat "$2")" == "$3" ]] && "$1" -c "$4" >/dev/null 2>&1
}
