#!/usr/bin/env bash
# Trains the scikit-learn models the remote peers serve (models/train.py --joblib-dir),
# writing into the cache, never into the repo's models/. Prints the directory that holds
# <name>/model.joblib. The directory is named after what the models are made of (train.py and
# the models venv's lock), as a venv is after its locks: checkouts that differ there, sharing
# the cache, each keep their own and never retrain (or remove) one another's. A stamp written
# last marks it complete; parallel callers wait for one training.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SHA="$(cat "$REPO_DIR/models/train.py" "$PEERS_DIR/locks/venv-models.txt" | sha256sum | cut -d' ' -f1)"
OUT="$CACHE_DIR/peer-models-${SHA:0:12}"
STAMP="$OUT/.trained"
ready() { [[ -f "$STAMP" && -f "$OUT/joblib/wine_rf/model.joblib" ]]; }
if ! ready; then
  mkdir -p "$CACHE_DIR"
  exec 8>"$CACHE_DIR/.${OUT##*/}.lock"
  flock 8
  if ! ready; then
    PY="$("$REPO_DIR/scripts/python-env.sh")"
    echo "peers: training joblib models into $OUT" >&2
    rm -rf "$OUT"
    mkdir -p "$OUT"
    # --out keeps the ONNX copies (and manifest) in the cache too: the repo's models/ stay untouched.
    "$PY" "$REPO_DIR/models/train.py" --out "$OUT/onnx" --joblib-dir "$OUT/joblib" >&2
    printf '%s\n' "$SHA" >"$STAMP"
  fi
  exec 8>&-
fi
echo "$OUT/joblib"
