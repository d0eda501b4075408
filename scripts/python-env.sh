#!/usr/bin/env bash
# Creates (or reuses) the Python venv used to train and export the ONNX models
# in models/. Prints the venv's python interpreter path on stdout, so callers do:
#
#   PY=$(scripts/python-env.sh)
#   $PY models/train.py
#
# All pip / venv chatter goes to stderr. Works from an empty cache.
set -euo pipefail

CACHE_DIR="${SPECSERVE_CACHE:-$HOME/.cache/specserve}"
VENV="$CACHE_DIR/venv-models"
PY="$VENV/bin/python"

# Pinned versions (resolved together; onnxruntime matches onnxruntime-node 1.30).
REQUIREMENTS=(
  "numpy==2.4.6"
  "scikit-learn==1.9.1"
  "skl2onnx==1.20.0"
  "onnx==1.23.2"
  "onnxruntime==1.30.0"
  "joblib==1.6.0"
)
# A stamp file records what was installed, so a changed pin triggers a reinstall.
STAMP="$VENV/.specserve-requirements"
WANT="$(printf '%s\n' "${REQUIREMENTS[@]}")"

venv_ok() {
  [[ -x "$PY" ]] || return 1
  [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$WANT" ]] || return 1
  "$PY" -c 'import numpy, sklearn, skl2onnx, onnx, onnxruntime, joblib' >/dev/null 2>&1
}

if ! venv_ok; then
  mkdir -p "$CACHE_DIR"
  if [[ ! -x "$PY" ]] || ! "$PY" -c 'import sys' >/dev/null 2>&1; then
    echo "python-env: creating venv at $VENV" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2
  fi
  echo "python-env: installing pinned packages" >&2
  "$PY" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}" >&2
  printf '%s\n' "$WANT" >"$STAMP"
  venv_ok || { echo "python-env: venv at $VENV is not usable" >&2; exit 1; }
fi

echo "$PY"
