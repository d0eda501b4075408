#!/usr/bin/env bash
# Builds test/telemetry/promparse (the Prometheus server's own text-format parser,
# github.com/prometheus/common/expfmt, behind a JSON printer) into the cache dir from the
# Go module proxy, and prints the binary's path. Rebuilt only when its source changes.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SRC="$ROOT/test/telemetry/promparse"
CACHE_DIR="${SPECSERVE_CACHE:-$HOME/.cache/specserve}"
# Absolute: the build runs in $SRC (a relative path would name another directory there), go refuses
# a relative GOMODCACHE, and the printed path must hold from any directory.
[[ "$CACHE_DIR" == /* ]] || CACHE_DIR="$PWD/$CACHE_DIR"
BIN="$CACHE_DIR/bin"
TARGET="$BIN/promparse"
STAMP="$BIN/.promparse.version"
WANT="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -d' ' -f1)"

mkdir -p "$BIN"
exec 9>"$BIN/.promparse.lock"
flock 9
if [[ ! -x "$TARGET" || ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
  GO="$(command -v go || true)"
  [[ -z "$GO" && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
  [[ -n "$GO" ]] || { echo "promparse: go is not installed" >&2; exit 1; }
  echo "promparse: building $SRC" >&2
  (cd "$SRC" && GOMODCACHE="$CACHE_DIR/go/mod" GOCACHE="$CACHE_DIR/go/build" GOFLAGS="-buildvcs=false -modcacherw" GOTOOLCHAIN=local \
    CGO_ENABLED=0 "$GO" build -o "$TARGET" . >&2)
  echo "$WANT" >"$STAMP"
fi
echo "$TARGET"
