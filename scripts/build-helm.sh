#!/usr/bin/env bash
# Builds helm from its upstream Go module into the project's cache and prints its path.
#
#   scripts/build-helm.sh              # prints the path of the binary
#   HELM=/path/to/helm scripts/...     # uses that binary instead
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
cd "$(dirname "$0")/.."
source scripts/lib/go-build.sh
if [[ -n "${HELM:-}" && -x "$HELM" ]]; then
  echo "$HELM"
  exit 0
fi
# The ldflags of helm's own Makefile: its version, and the Kubernetes version `helm template`
# and `helm lint` assume (1.<client-go minor>; unset, it is 1.20 and kubeVersion checks fail).
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
if [[ ! -x "$CACHE_ROOT/helm/$HELM_VERSION/helm" ]]; then
  gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  k8s_minor=$(awk '$1 == "k8s.io/client-go" {print $2}' "$gomod" | cut -d. -f2)
  for pkg in pkg/lint/rules pkg/chartutil; do
    ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$k8s_minor"
  done
fi
go_install_module helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "" "$ldflags"
