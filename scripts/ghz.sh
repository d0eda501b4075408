#!/usr/bin/env bash
# Installs ghz (gRPC load generator) into "$CACHE/bin" from the Go module proxy; prints its path.
exec "$(dirname "$0")/go-tools.sh" ghz
