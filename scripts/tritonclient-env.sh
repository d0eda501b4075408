#!/usr/bin/env bash
# Creates (or reuses) a Python venv with NVIDIA's tritonclient (a standard Open Inference
# Protocol V2 client written by someone else) for the OIP interop tests, plus `onnx` to
# write a tiny INT64-input test model. Prints the venv's python path on stdout:
#
#   PY=$(scripts/tritonclient-env.sh)
#
# pip chatter goes to stderr. Works from an empty cache; reused when present.
set -euo pipefail

CACHE_DIR="${SPECSERVE_CACHE:-$HOME/.cache/specserve}"
VENV="$CACHE_DIR/venv-tritonclient"
PY="$VENV/bin/python"

REQUIREMENTS=(
  "tritonclient[http,grpc]==2.73.0"
  "numpy==2.4.6"
  "onnx==1.23.2"
)
STAMP="$VENV/.specserve-requirements"
WANT="$(printf '%s\n' "${REQUIREMENTS[@]}")"

venv_ok() {
  [[ -x "$PY" ]] || return 1
  [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$WANT" ]] || return 1
  "$PY" -c 'import tritonclient.grpc, tritonclient.http, numpy, onnx' >/dev/null 2>&1
}

if ! venv_ok; then
  mkdir -p "$CACHE_DIR"
  # Parallel callers serialize here; the second finds the venv ready.
  exec 9>"$CACHE_DIR/.venv-tritonclient.lock"
  flock 9
  if ! venv_ok; then
    if [[ ! -x "$PY" ]] || ! "$PY" -c 'import sys' >/dev/null 2>&1; then
      echo "tritonclient-env: creating venv at $VENV" >&2
      rm -rf "$VENV"
      python3 -m venv "$VENV" >&2
    fi
    echo "tritonclient-env: installing pinned packages" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}" >&2
    printf '%s\n' "$WANT" >"$STAMP"
    venv_ok || { echo "tritonclient-env: venv at $VENV is not usable" >&2; exit 1; }
  fi
fi

echo "$PY"
