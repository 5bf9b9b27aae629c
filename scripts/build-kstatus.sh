#!/usr/bin/env bash
# Builds tests/kstatus/go, a tiny program around sigs.k8s.io/cli-utils/pkg/kstatus/status (the
# status rules Flux, kpt and cli-utils apply), into the project's cache keyed by a hash of its
# sources, and prints the binary's path.
#
#   scripts/build-kstatus.sh               # prints the path of the binary
#   DJL_KSTATUS_BIN=/path scripts/...      # uses that binary instead
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/go-build.sh
go_build_source tests/kstatus/go kstatus "${DJL_KSTATUS_BIN:-}"
