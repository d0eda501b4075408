#!/usr/bin/env bash
# Regenerates one hash lock in scripts/peers/locks/ from top-level pins, so a bump is one
# command (each lock's header holds the command that wrote it: change a pin there, run it):
#
#   scripts/peers/lock.sh [--upgrade] NAME PIN... [-- NODEPS_PIN...]
#
# pip resolves PIN... and all their dependencies in a throwaway venv of this machine's python3
# (run it where CI runs: linux x86_64, the python the other locks name), then locks/NAME.txt gets
# every resolved package at its exact version with the sha256 of each file of that release on the
# index pip uses. NODEPS_PIN... go to locks/NAME.nodeps.txt, installed after it without their
# dependencies (see tfserving-standin.sh). Each lock records that python3 in its `# python:` line
# (e.g. "cpython 3.11"): markers and wheels were chosen for it, and lib.sh builds no venv from the
# lock with another. To move to a new Python, regenerate every lock on it, build-tools.txt first.
# pip and setuptools are left out unless pinned or depended on: a venv has what its Python's
# ensurepip installs (pip; setuptools too up to 3.11), not the network.
# Every package the command does not name keeps its version from the current lock (what the
# tests ran), as pip-compile does; --upgrade re-resolves them all to the newest that fit.
# Then provision the venv (its script) and run its tests: the lock is what they tested.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage='usage: scripts/peers/lock.sh [--upgrade] NAME PIN... [-- NODEPS_PIN...]'
upgrade=0
if [[ "${1:-}" == --upgrade ]]; then upgrade=1; shift; fi
name="${1:?$usage}"
shift
pins=() nodeps=() seen_sep=0
for p in "$@"; do
  if [[ "$p" == "--" ]]; then seen_sep=1; continue; fi
  if ((seen_sep)); then nodeps+=("$p"); else pins+=("$p"); fi
done
((${#pins[@]})) || { echo "$usage" >&2; exit 2; }

lock_dir="$PEERS_DIR/locks"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv" >&2
py="$work/venv/bin/python"
# An sdist's metadata is prepared with the locked build tools, as ensure_venv builds it.
if [[ "$name" != build-tools && -f "$lock_dir/build-tools.txt" ]]; then
  "$py" -m pip install --quiet --require-hashes --no-deps -r "$lock_dir/build-tools.txt" >&2
fi

# canonical NAME: the PEP 503 form of a project name (extras dropped), as the locks write it.
canonical() { local n="${1%%[[=]*}"; tr 'A-Z_.' 'a-z--' <<<"$n" | tr -s -; }
named=" "
for p in "${pins[@]}" "${nodeps[@]}"; do named+="$(canonical "$p") "; done
: >"$work/constraints.txt"
if ((!upgrade)) && [[ -f "$lock_dir/$name.txt" ]]; then
  grep -E '^[A-Za-z0-9]' "$lock_dir/$name.txt" | sed 's/ *\\$//' | while read -r pin; do
    [[ "$named" == *" $(canonical "$pin") "* ]] || echo "$pin"
  done >"$work/constraints.txt"
fi
echo "lock.sh: resolving ${pins[*]}" >&2
"$py" -m pip install --quiet --dry-run --ignore-installed --no-build-isolation \
  -c "$work/constraints.txt" --report "$work/report.json" "${pins[@]}" >&2 || {
  echo "lock.sh: no resolution keeps the other versions of $lock_dir/$name.txt; rerun with --upgrade" >&2
  exit 1
}

index="${PIP_INDEX_URL:-$("$py" -m pip config get global.index-url 2>/dev/null || echo https://pypi.org/simple)}"
regenerate="scripts/peers/lock.sh $name $*"
what='every package of the venv'
if [[ "$name" == build-tools ]]; then what='the tools that build a locked sdist (ensure_venv installs them first)'; fi
# header WHAT: a lock's opening comment (WHAT: which packages the file holds).
header() {
  # shellcheck disable=SC2016 # the backquotes are text in the lock's comment, not a command
  printf '%s\n' "$name: $1." \
    'Each at an exact version with the sha256 of every file of that release on the index; scripts/peers/lib.sh' \
    'installs it with `pip install --require-hashes --no-deps`: nothing else, no other bytes.' \
    'Generated; to change a pin, edit it in this command and run it (with the python named below, on linux x86_64; the' \
    'other packages keep their versions unless --upgrade follows lock.sh):' \
    "  $regenerate"
}
"$py" "$PEERS_DIR/lock_hashes.py" --index "$index" --out "$lock_dir/$name.txt" \
  --header "$(header "$what")" --report "$work/report.json"
if ((${#nodeps[@]})); then
  "$py" "$PEERS_DIR/lock_hashes.py" --index "$index" --out "$lock_dir/$name.nodeps.txt" \
    --header "$(header "installed after $name.txt, over it, without dependencies")" --pins "${nodeps[@]}"
elif [[ -f "$lock_dir/$name.nodeps.txt" ]]; then
  rm "$lock_dir/$name.nodeps.txt"
fi
echo "lock.sh: wrote $lock_dir/$name.txt" >&2
# A venv installs build-tools.txt with its own lock, and lib.sh wants them from one python.
made_on="$(lock_python "$lock_dir/$name.txt")"
for other in "$lock_dir"/*.txt; do
  if [[ "$(lock_python "$other")" != "$made_on" ]]; then
    echo "lock.sh: $other was resolved on $(lock_python "$other"), this lock on $made_on: regenerate it too (the command at its top)" >&2
  fi
done
