#!/usr/bin/env bash
# Creates (or refreshes) the project virtualenv with everything the tests and the
# demo need, and builds (or reuses) the control-plane binaries. Idempotent: a
# second run with nothing changed takes seconds.
#
#   scripts/bootstrap.sh            # venv at .venv (VENV=... to move it)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.installed"
# pip's download cache survives between runs (torch from PyPI is a large CUDA build).
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[bootstrap] creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
if [[ ! -f "$STAMP" || pyproject.toml -nt "$STAMP" || kit/pyproject.toml -nt "$STAMP" || requirements.lock -nt "$STAMP" ]]; then
  echo "[bootstrap] installing the runtime and the kit (test, serve extras), editable, pinned by requirements.lock" >&2
  "$VENV/bin/pip" install --quiet --upgrade pip
  # The lock as constraints: exact versions for whatever the two distributions pull in.
  "$VENV/bin/pip" install --quiet -c requirements.lock -e . -e './kit[test,serve]'
  touch "$STAMP"
fi
echo "[bootstrap] control-plane binaries: $(scripts/build-control-plane.sh)" >&2
echo "[bootstrap] kubeconform: $(scripts/build-kubeconform.sh)" >&2
echo "[bootstrap] helm: $(scripts/build-helm.sh)" >&2
