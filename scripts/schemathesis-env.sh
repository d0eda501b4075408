#!/usr/bin/env bash
# Provisions (or reuses) schemathesis, the schema-driven REST fuzzer used by
# test/security/fuzz-rest.e2e.test.ts, in a venv in the cache (scripts/peers/lib.sh does
# the venv). Prints the path of the `schemathesis` command on stdout. Works from an empty cache.
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/peers/lib.sh"

ensure_venv schemathesis 'import schemathesis' "$PEERS_DIR/locks/venv-schemathesis.txt"
echo "$VENV/bin/schemathesis"
