#!/usr/bin/env bash
# Builds the aws-sdk-go-v2 conformance client (tests/conformance/go) into the project's cache,
# keyed by a hash of its Go sources and go.mod/go.sum, and prints the binary's path.
#
#   scripts/build-conformance.sh             # prints the path of the binary
#   DJL_CONFORMANCE_BIN=/path scripts/...    # uses that binary instead
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/go-build.sh
go_build_source tests/conformance/go conformance "${DJL_CONFORMANCE_BIN:-}"
