# shellcheck shell=bash
# Shared by the peer provisioning scripts (sourced, not run). Each peer gets its own
# venv in the cache, built from hash locks (scripts/peers/locks/, written by lock.sh) and named
# after them (a stamp file, written last, marks it complete). All pip chatter
# goes to stderr: stdout carries the one path the caller asked for.
set -euo pipefail

CACHE_DIR="${SPECSERVE_CACHE:-$HOME/.cache/specserve}"
# Absolute, once: Go refuses a relative GOMODCACHE or GOBIN ("GOMODCACHE entry is relative"), and
# a printed path must still hold after the caller changes directory. Nothing is created here: a
# script that stops early (check_python) leaves no cache behind.
[[ "$CACHE_DIR" == /* ]] || CACHE_DIR="$PWD/$CACHE_DIR"
PEERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$PEERS_DIR/../.." && pwd)"

# ensure_venv NAME CHECK_IMPORTS LOCK...
# Creates or reuses the venv holding exactly the LOCK files' packages (installed in order) and
# sets VENV to its directory: $CACHE_DIR/venv-NAME-<first 12 hex of the locks' sha256>. Named
# after its locks, so checkouts with other locks sharing the cache (an older commit's worktree
# for an A/B benchmark) each keep their own venv and never rebuild one another's; a lock change
# leaves the old directory to the checkouts that use it. CHECK_IMPORTS is a Python import line
# that must succeed. Each lock is installed with --require-hashes --no-deps: pip takes no
# package and no bytes the lock does not name, so a new release of anything cannot change a
# fresh machine's venv. --no-build-isolation: an sdist the lock names is built with the venv's
# own setuptools (locks/build-tools.txt, listed first), never with the newest one pip would
# fetch unpinned for an isolated build. pip itself comes with the Python install (ensurepip).
ensure_venv() {
  local name="$1" check="$2"
  shift 2
  local locks=("$@") lock
  for lock in "${locks[@]}"; do
    [[ -f "$lock" ]] || { echo "${0##*/}: no lock file $lock" >&2; exit 1; }
  done
  check_python "${locks[@]}"
  local sha
  sha="$(cat "${locks[@]}" | sha256sum | cut -d' ' -f1)"
  VENV="$CACHE_DIR/venv-$name-${sha:0:12}"
  local py="$VENV/bin/python" stamp="$VENV/.specserve-requirements" want="locks sha256 $sha"
  venv_ready "$py" "$stamp" "$want" "$check" && return 0
  mkdir -p "$CACHE_DIR"
  # Parallel callers serialize here; the second finds the venv ready.
  exec 9>"$CACHE_DIR/.${VENV##*/}.lock"
  flock 9
  if ! venv_ready "$py" "$stamp" "$want" "$check"; then
    # Not ready: never built, interrupted (the stamp is written last, so a Ctrl-C or CI timeout
    # anywhere before leaves none) or broken. Start over: a venv holds its lock, no more.
    # A rebuild takes what it can from pip's download cache.
    echo "${0##*/}: creating venv at $VENV" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2
    for lock in "${locks[@]}"; do
      echo "${0##*/}: installing ${lock#"$REPO_DIR"/} into $VENV" >&2
      "$py" -m pip install --quiet --disable-pip-version-check \
        --require-hashes --no-deps --no-build-isolation -r "$lock" >&2
    done
    "$py" -c "$check" >&2 || { echo "${0##*/}: venv at $VENV is not usable" >&2; exit 1; }
    printf '%s\n' "$want" >"$stamp"
  fi
  exec 9>&-
}

# python_tag: "IMPLEMENTATION MAJOR.MINOR" of python3, e.g. "cpython 3.11", as a lock's
# `# python:` line records it (lock_hashes.py writes that line).
python_tag() {
  python3 -c 'import sys; print(sys.implementation.name, "%d.%d" % sys.version_info[:2])'
}

# lock_python LOCK: the python its `# python:` line names ("cpython 3.11"), empty if none.
lock_python() {
  sed -n '/^# python: /{s/^# python: \([^ ]* [0-9.]*\).*/\1/p;q;}' "$1"
}

# check_python LOCK...: exits, before anything is created, unless python3 is the interpreter the
# locks were resolved on. Markers (python_version < "3.12") and wheel choices are frozen in a lock,
# and a newer Python's venv lacks what an older one's had (3.12 ships no setuptools), so a venv
# built from them on another Python breaks in ways far from the cause.
check_python() {
  local lock first="" need="" found have
  for lock in "$@"; do
    found="$(lock_python "$lock")"
    if [[ -z "$found" ]]; then
      echo "${0##*/}: ${lock#"$REPO_DIR"/} has no '# python:' line naming the python it was resolved on;" \
        "regenerate it with the scripts/peers/lock.sh command at its top" >&2
      exit 1
    elif [[ -n "$need" && "$found" != "$need" ]]; then
      echo "${0##*/}: ${first#"$REPO_DIR"/} was resolved on $need but ${lock#"$REPO_DIR"/} on $found, and one venv" \
        "installs both; regenerate them on one python with the scripts/peers/lock.sh command at the top of each" >&2
      exit 1
    fi
    first="${first:-$lock}" need="$found"
  done
  command -v python3 >/dev/null || { echo "${0##*/}: no python3 on PATH; the locks need $need" >&2; exit 1; }
  have="$(python_tag)" || { echo "${0##*/}: python3 ($(command -v python3)) does not run" >&2; exit 1; }
  if [[ "$have" != "$need" ]]; then
    echo "${0##*/}: python3 ($(command -v python3)) is $have, but the locks (${*#"$REPO_DIR"/}) were resolved on $need." \
      "Put a $need python3 first on PATH, or regenerate the locks on this one: run the scripts/peers/lock.sh command" \
      "at the top of each lock in scripts/peers/locks/, then provision the venvs and run their tests." >&2
    exit 1
  fi
}

# venv_ready PY STAMP WANT CHECK_IMPORTS: the venv was built from the locks WANT names and its
# imports work (no network: an unchanged lock is reused as is).
venv_ready() {
  [[ -x "$1" && -f "$2" && "$(cat "$2")" == "$3" ]] && "$1" -c "$4" >/dev/null 2>&1
}
