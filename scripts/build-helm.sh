#!/usr/bin/env bash
# Builds helm from its upstream Go module into the same cache as the control
# plane (scripts/build-control-plane.sh). Re-running is cheap: a finished
# binary is reused.
#
#   scripts/build-helm.sh              # prints the path of the binary
#   HELM=/path/to/helm scripts/...     # uses that binary instead
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE_ROOT="${DJL_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/djl-operator}"
BIN_DIR="$CACHE_ROOT/helm/$HELM_VERSION"

if [[ -n "${HELM:-}" && -x "$HELM" ]]; then
  echo "$HELM"
  exit 0
fi
if [[ -x "$BIN_DIR/helm" ]]; then
  echo "$BIN_DIR/helm"
  exit 0
fi

echo "[build-helm] building helm.sh/helm/v3/cmd/helm@$HELM_VERSION (first build takes a few minutes)" >&2
mkdir -p "$BIN_DIR"
# GOBIN install from the module proxy: no checkout, no go.mod of ours involved.
# The version is stamped so `helm version` and the chart's kubeVersion checks see it.
GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOBIN="$BIN_DIR/.tmp" \
  go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
mv "$BIN_DIR/.tmp/helm" "$BIN_DIR/helm"
rmdir "$BIN_DIR/.tmp"
echo "$BIN_DIR/helm"
