#!/usr/bin/env bash
# Trains the scikit-learn models the remote peers serve (models/train.py --joblib-dir),
# writing into the cache, never into the repo's models/. Prints the directory that holds
# <name>/model.joblib. Retrains only when train.py changes.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT="$CACHE_DIR/peer-models"
STAMP="$OUT/.train-sha"
WANT="$(sha256sum "$REPO_DIR/models/train.py" | cut -d' ' -f1)"
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" || ! -f "$OUT/joblib/wine_rf/model.joblib" ]]; then
  PY="$("$REPO_DIR/scripts/python-env.sh")"
  echo "peers: training joblib models into $OUT" >&2
  rm -rf "$OUT"
  mkdir -p "$OUT"
  # --out keeps the ONNX copies (and manifest) in the cache too: the repo's models/ stay untouched.
  "$PY" "$REPO_DIR/models/train.py" --out "$OUT/onnx" --joblib-dir "$OUT/joblib" >&2
  printf '%s\n' "$WANT" >"$STAMP"
fi
echo "$OUT/joblib"
