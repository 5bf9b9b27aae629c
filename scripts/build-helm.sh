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
# The ldflags of helm's own Makefile: its version, and the Kubernetes version `helm template`
# and `helm lint` assume (1.<client-go minor>; unset, it is 1.20 and kubeVersion checks fail).
gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
k8s_minor=$(awk '$1 == "k8s.io/client-go" {print $2}' "$gomod" | cut -d. -f2)
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
done
# GOBIN install from the module proxy: no checkout, no go.mod of ours involved.
GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOBIN="$BIN_DIR/.tmp" \
  go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
mv "$BIN_DIR/.tmp/helm" "$BIN_DIR/helm"
rmdir "$BIN_DIR/.tmp"
echo "$BIN_DIR/helm"
