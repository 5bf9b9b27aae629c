#!/usr/bin/env bash
# Builds the aws-sdk-go-v2 conformance client (tests/conformance/go) into a cache folder,
# keyed by a hash of its Go sources and go.mod/go.sum, and prints the binary's path.
# Re-running with nothing changed is instant; modules come from the Go module proxy and
# Go's module/build caches persist (a cold build of the SDK takes a minute or two).
#
#   scripts/build-conformance.sh             # prints the path of the binary
#   DJL_CONFORMANCE_BIN=/path scripts/...    # uses that binary instead
set -euo pipefail
cd "$(dirname "$0")/.."

SRC=tests/conformance/go
CACHE_ROOT="${DJL_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/djl-operator}"

if [[ -n "${DJL_CONFORMANCE_BIN:-}" && -x "$DJL_CONFORMANCE_BIN" ]]; then
  echo "$DJL_CONFORMANCE_BIN"
  exit 0
fi

# The key covers every input of the build: the sources, go.mod/go.sum and the Go version.
KEY=$({ go version; find "$SRC" -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)
BIN="$CACHE_ROOT/conformance/$KEY/conformance"
if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$(dirname "$BIN")"
echo "[build-conformance] building $SRC (first build of aws-sdk-go-v2 takes a minute or two)" >&2
# -mod=readonly: the committed go.mod/go.sum are the whole truth; a stale go.sum fails the build.
(cd "$SRC" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -o "$BIN.tmp" .)
mv "$BIN.tmp" "$BIN"
echo "$BIN"
