#!/usr/bin/env bash
# Creates (or reuses) a Python venv with NVIDIA's tritonclient (a standard Open Inference
# Protocol V2 client written by someone else) for the OIP interop tests, plus `onnx` to
# write a tiny INT64-input test model. Prints the venv's python path on stdout:
#
#   PY=$(scripts/tritonclient-env.sh)
#
# pip chatter goes to stderr. Works from an empty cache; reused when present; recovers
# from an interrupted earlier run (scripts/peers/lib.sh does the venv).
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peers/lib.sh"

ensure_venv tritonclient 'import tritonclient.grpc, tritonclient.http, numpy, onnx' \
  "$PEERS_DIR/locks/venv-tritonclient.txt"
echo "$VENV/bin/python"
