#!/usr/bin/env bash
# Creates (or reuses) the Python venv used to train and export the ONNX models
# in models/. Prints the venv's python interpreter path on stdout, so callers do:
#
#   PY=$(scripts/python-env.sh)
#   "$PY" models/train.py
#
# All pip / venv chatter goes to stderr. Works from an empty cache, and recovers from an
# interrupted earlier run (scripts/peers/lib.sh does the venv).
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peers/lib.sh"

# The lock's header holds the pins: numpy 2.4.6, scikit-learn 1.9.1, skl2onnx 1.20.0, onnx 1.23.2,
# onnxruntime 1.30.0 (matches onnxruntime-node 1.30), joblib 1.6.0; resolved together.
ensure_venv models 'import numpy, sklearn, skl2onnx, onnx, onnxruntime, joblib' \
  "$PEERS_DIR/locks/venv-models.txt"
echo "$VENV/bin/python"
