#!/usr/bin/env bash
# Builds kubeconform from its upstream Go module into the project's cache and prints its path.
#
#   scripts/build-kubeconform.sh                   # prints the path of the binary
#   KUBECONFORM=/path/to/kubeconform scripts/...   # uses that binary instead
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/go-build.sh
go_install_module kubeconform github.com/yannh/kubeconform/cmd/kubeconform "${KUBECONFORM_VERSION:-v0.8.0}" \
  "${KUBECONFORM:-}"
