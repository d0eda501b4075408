#!/usr/bin/env bash
# Provisions (or reuses) MLServer with its scikit-learn runtime in a venv in the cache.
# Prints the venv directory; start it with `"$VENV/bin/mlserver" start MODEL_REPO`
# (see test/e2e/peers.ts, which also writes the model-settings.json).
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The lock pins mlserver and mlserver-sklearn 1.7.1, and scikit-learn at the version that trains
# the models (scripts/python-env.sh), so the joblib files load without version warnings.
ensure_venv mlserver 'import mlserver, mlserver_sklearn, sklearn' "$PEERS_DIR/locks/venv-mlserver.txt"
echo "$VENV"
