#!/usr/bin/env bash
# Builds tests/kstatus/go, a tiny program around sigs.k8s.io/cli-utils/pkg/kstatus/status (the
# status rules Flux, kpt and cli-utils apply), into a cache folder keyed by a hash of its sources,
# and prints the binary's path. Modules come from the Go module proxy; re-running is instant.
#
#   scripts/build-kstatus.sh               # prints the path of the binary
#   DJL_KSTATUS_BIN=/path scripts/...      # uses that binary instead
set -euo pipefail
cd "$(dirname "$0")/.."

SRC=tests/kstatus/go
CACHE_ROOT="${DJL_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/djl-operator}"

if [[ -n "${DJL_KSTATUS_BIN:-}" && -x "$DJL_KSTATUS_BIN" ]]; then
  echo "$DJL_KSTATUS_BIN"
  exit 0
fi

# The key covers every input of the build: the sources, go.mod/go.sum and the Go version.
KEY=$({ go version; find "$SRC" -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)
BIN="$CACHE_ROOT/kstatus/$KEY/kstatus"
if [[ -x "$BIN" ]]; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$(dirname "$BIN")"
echo "[build-kstatus] building $SRC (sigs.k8s.io/cli-utils kstatus)" >&2
# -mod=readonly: the committed go.mod/go.sum are the whole truth; a stale go.sum fails the build.
(cd "$SRC" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -o "$BIN.tmp" .)
mv "$BIN.tmp" "$BIN"
echo "$BIN"
