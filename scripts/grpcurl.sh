#!/usr/bin/env bash
# Installs grpcurl into "$CACHE/bin" from the Go module proxy; prints its path.
exec "$(dirname "$0")/go-tools.sh" grpcurl
