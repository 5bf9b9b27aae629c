#!/usr/bin/env bash
# Builds kubeconform from its upstream Go module into the same cache as the
# control plane (scripts/build-control-plane.sh). Re-running is cheap: a
# finished binary is reused.
#
#   scripts/build-kubeconform.sh              # prints the path of the binary
#   KUBECONFORM=/path/to/kubeconform scripts/...   # uses that binary instead
set -euo pipefail

KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.8.0}"
CACHE_ROOT="${DJL_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/djl-operator}"
BIN_DIR="$CACHE_ROOT/kubeconform/$KUBECONFORM_VERSION"

if [[ -n "${KUBECONFORM:-}" && -x "$KUBECONFORM" ]]; then
  echo "$KUBECONFORM"
  exit 0
fi
if [[ -x "$BIN_DIR/kubeconform" ]]; then
  echo "$BIN_DIR/kubeconform"
  exit 0
fi

echo "[build-kubeconform] building github.com/yannh/kubeconform@$KUBECONFORM_VERSION" >&2
mkdir -p "$BIN_DIR"
# GOBIN install from the module proxy: no checkout, no go.mod of ours involved.
GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOBIN="$BIN_DIR/.tmp" \
  go install -trimpath -ldflags "-s -w" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
mv "$BIN_DIR/.tmp/kubeconform" "$BIN_DIR/kubeconform"
rmdir "$BIN_DIR/.tmp"
echo "$BIN_DIR/kubeconform"
