#!/usr/bin/env bash
# Installs a pinned Go tool (ghz or grpcurl) from the Go module proxy into
# "$CACHE/bin" and prints its path on stdout. Idempotent: a tool already built at
# the pinned version is reused. Needs `go` on PATH or in /usr/local/go: Go 1.21 builds these two
# (grpcurl v1.9.3's go.mod says 1.21, ghz's and their dependencies' less), but `npm test` needs
# Go 1.24 or later for kustomize (scripts/deploy-tools.sh; README.md lists the prerequisites).
#
#   GHZ=$(scripts/go-tools.sh ghz)
#   GRPCURL=$(scripts/go-tools.sh grpcurl)
#
# Build chatter goes to stderr. Go's own caches live under the cache dir too, so a
# fresh clone with a warm cache builds nothing.
set -euo pipefail

CACHE_DIR="${SPECSERVE_CACHE:-$HOME/.cache/specserve}"
# Absolute: go refuses a relative GOBIN or GOMODCACHE, and the printed path must hold from any directory.
[[ "$CACHE_DIR" == /* ]] || CACHE_DIR="$PWD/$CACHE_DIR"
BIN="$CACHE_DIR/bin"

case "${1:-}" in
  ghz) MODULE="github.com/bojand/ghz/cmd/ghz"; VERSION="v0.120.0" ;;
  grpcurl) MODULE="github.com/fullstorydev/grpcurl/cmd/grpcurl"; VERSION="v1.9.3" ;;
  *) echo "usage: $0 ghz|grpcurl" >&2; exit 2 ;;
esac
TOOL="$1"
TARGET="$BIN/$TOOL"
STAMP="$BIN/.$TOOL.version"

if [[ -x "$TARGET" && -f "$STAMP" && "$(cat "$STAMP")" == "$MODULE@$VERSION" ]]; then
  echo "$TARGET"
  exit 0
fi

GO="$(command -v go || true)"
[[ -z "$GO" && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
[[ -n "$GO" ]] || { echo "go-tools: go is not installed (needed to build $TOOL)" >&2; exit 1; }

mkdir -p "$BIN"
# Concurrent callers (parallel test files) serialize on a lock; the second one finds the tool built.
exec 9>"$BIN/.$TOOL.lock"
flock 9
if [[ -x "$TARGET" && -f "$STAMP" && "$(cat "$STAMP")" == "$MODULE@$VERSION" ]]; then
  echo "$TARGET"
  exit 0
fi
echo "go-tools: building $MODULE@$VERSION into $BIN" >&2
GOBIN="$BIN" GOMODCACHE="$CACHE_DIR/go/mod" GOCACHE="$CACHE_DIR/go/build" GOFLAGS="-buildvcs=false -modcacherw" \
  CGO_ENABLED=0 "$GO" install "$MODULE@$VERSION" >&2
echo "$MODULE@$VERSION" >"$STAMP"
echo "$TARGET"
