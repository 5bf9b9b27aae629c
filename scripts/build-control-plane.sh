#!/usr/bin/env bash
# Builds kube-apiserver and etcd from their upstream Go modules into a cache
# folder (the envtest layout: one folder holding the binaries). Re-running is
# cheap: finished binaries are reused, and Go's module/build caches persist.
#
#   scripts/build-control-plane.sh            # prints the folder holding the binaries
#   KUBEBUILDER_ASSETS=/path scripts/...      # uses existing binaries instead (envtest convention)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE_ROOT="${DJL_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/djl-operator}"
BIN_DIR="$CACHE_ROOT/control-plane/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"

if [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/kube-apiserver" && -x "$KUBEBUILDER_ASSETS/etcd" ]]; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi
if [[ -x "$BIN_DIR/kube-apiserver" && -x "$BIN_DIR/etcd" ]]; then
  echo "$BIN_DIR"
  exit 0
fi

mkdir -p "$BIN_DIR"
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

log() { echo "[build-control-plane] $*" >&2; }

build_kube_apiserver() {
  local work="$CACHE_ROOT/control-plane/src-kube-apiserver-$K8S_VERSION"
  mkdir -p "$work"
  cd "$work"
  log "resolving k8s.io/kubernetes@$K8S_VERSION"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with
  # local folders; outside its repo we map each to the published v0.X.Y tag.
  local staging_version="v0.${K8S_VERSION#v1.}"
  {
    echo "module local/kube-apiserver-build"
    echo
    echo "go $(sed -n 's/^go \(.*\)/\1/p' "$gomod")"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -E '=> \./staging/' "$gomod" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
  } > go.mod
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  log "building kube-apiserver (first build takes several minutes)"
  go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)" \
    -o "$BIN_DIR/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$BIN_DIR/kube-apiserver.tmp" "$BIN_DIR/kube-apiserver"
}

build_etcd() {
  local work="$CACHE_ROOT/control-plane/src-etcd-$ETCD_VERSION"
  mkdir -p "$work"
  cd "$work"
  log "resolving go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  printf 'module local/etcd-build\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > go.mod
  log "building etcd"
  go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
}

[[ -x "$BIN_DIR/etcd" ]] || build_etcd
[[ -x "$BIN_DIR/kube-apiserver" ]] || build_kube_apiserver
echo "$BIN_DIR"
