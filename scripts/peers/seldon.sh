#!/usr/bin/env bash
# Provisions (or reuses) seldon-core's v1 Python microservice wrapper in a venv in the
# cache. Prints the venv directory; start a model with
#   "$VENV/bin/seldon-core-microservice" SklearnModel --service-type MODEL ...
# from scripts/peers/seldon_model/ (see test/e2e/peers.ts).
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# seldon-core 1.18 is the last release for Python 3.11 and pins numpy<2 and protobuf<4;
# scikit-learn 1.9.1 (the version that trains the models) still supports numpy 1.26.
# setuptools is pinned below 81: its gunicorn 20 still imports pkg_resources.
# A few of its dependencies publish only an sdist: build-tools.txt, first, builds them.
ensure_venv seldon 'import seldon_core.microservice, sklearn, joblib' \
  "$PEERS_DIR/locks/build-tools.txt" \
  "$PEERS_DIR/locks/venv-seldon.txt"
echo "$VENV"
