#!/usr/bin/env bash
# The test command (README: `make test`): bootstrap, then the whole suite against
# a real kube-apiserver + etcd and the local SageMaker/S3 emulator.
#   scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
VENV="${VENV:-.venv}"
KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$(scripts/build-control-plane.sh)}"
export KUBEBUILDER_ASSETS HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# The suite starts hundreds of Python processes (operators, emulators, CLIs) and pytest rewrites
# every test module's asserts: let them cache their bytecode (__pycache__/, git-ignored) even where
# the environment says not to (this machine's does), or each one compiles it all again.
unset PYTHONDONTWRITEBYTECODE
# With no arguments (make test, CI) the suite runs on PYTEST_WORKERS xdist workers, each with
# its own control plane: the tests mostly wait on real processes, so four fit on two cores
# (measured: four finish in ~4 min using ~1.7 cores; three leave a core idle a third of the time).
# loadgroup, in collection order: tests/conftest.py puts the slow tests and the end-to-end modules
# (one unit each: one operator per module) first and lets the short tests fill in.
if [[ $# -eq 0 ]]; then
  set -- -n "${PYTEST_WORKERS:-4}" --dist loadgroup --no-loadscope-reorder
fi
set +e
"$VENV/bin/pytest" "$@"
status=$?
set -e
if [[ $status -eq 5 ]]; then
  # pytest's "no tests collected" is neither a pass nor an ordinary failure: say so.
  echo "scripts/test.sh: pytest collected no tests (exit 5); treating as a failure" >&2
fi
exit $status
