#!/usr/bin/env bash
# The local demo in one command (what `make demo` runs): creates the virtualenv
# if missing, installs the runtime and the kit with its `demo` extra (pinned by
# requirements.lock) when either pyproject.toml or the lock changed since the last
# install, builds or reuses the control-plane binaries, then runs
# `djl-operator-kit demo` (arguments are passed through, e.g.
# --exit-after-invoke, --workdir DIR).
#
#   scripts/demo.sh                        # runs until Ctrl-C
#   scripts/demo.sh --exit-after-invoke    # CI: exits after the first invocation
#
# Environment:
#   VENV=.venv             where the virtualenv lives
#   PYTHON=python3         interpreter that creates it (3.11+)
#   TORCH_INDEX_URL=...    install torch from this index first, e.g.
#                          https://download.pytorch.org/whl/cpu for the small CPU-only build
#   KUBEBUILDER_ASSETS=... use existing etcd + kube-apiserver binaries instead of building them
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

log() { echo "[demo.sh] $*" >&2; }

if [[ ! -x "$VENV/bin/python" ]]; then
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    log "$PYTHON is missing or older than 3.11; set PYTHON=/path/to/python3.11"
    exit 1
  fi
  log "creating the virtualenv in $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Installing again only when the dependency lists may have changed keeps reruns
# instant and offline; pip's download cache makes a reinstall cheap anyway.
stamp="$VENV/.djl-demo-installed"
wanted="$(cat pyproject.toml kit/pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
  if [[ -n "${TORCH_INDEX_URL:-}" ]] && ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    log "installing torch from $TORCH_INDEX_URL"
    "$VENV/bin/python" -m pip install --quiet -c requirements.lock --index-url "$TORCH_INDEX_URL" torch
  fi
  log "installing the runtime and the kit's demo extra (the first run downloads torch and transformers: minutes)"
  "$VENV/bin/python" -m pip install --quiet -c requirements.lock -e . -e './kit[demo]'
  echo "$wanted" > "$stamp"
else
  log "virtualenv $VENV is up to date"
fi

log "control-plane binaries (the first build of kube-apiserver takes several minutes and needs Go)"
if ! assets="$(scripts/build-control-plane.sh)"; then
  log "could not build etcd + kube-apiserver: install Go (https://go.dev/dl/) or set KUBEBUILDER_ASSETS"
  exit 1
fi
KUBEBUILDER_ASSETS="$(tail -n1 <<<"$assets")"
export KUBEBUILDER_ASSETS

exec "$VENV/bin/djl-operator-kit" demo "$@"
