#!/bin/sh
# Install the operator into a fresh virtualenv: the image's only install step
# (Dockerfile), also run outside Docker by tests/unit/test_dockerfile.py.
#
#   docker/install.sh SOURCE_DIR VENV_DIR
#
# Installs the operator wheel and its runtime dependencies only, at the versions of
# SOURCE_DIR/requirements.lock (`make lock`): no local kit, no torch/transformers.
# sagemaker-core is installed with --no-deps: the operator
# only reads its JSON image tables (djl_operator/artifacts/images.py) without importing
# it, and its own dependencies (pandas, scipy, numpy, paramiko, ...) would add hundreds
# of MB to the image.
set -eu

src=$1
venv=$2
python=${PYTHON:-python3}

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT

"$python" -m venv "$venv"
pip="$venv/bin/python -m pip --disable-pip-version-check"

$pip wheel --quiet --no-deps --wheel-dir "$wheels" "$src"
$pip install --quiet --no-deps "$wheels"/*.whl

# The wheel's runtime requirements (no extras), split into normal ones and --no-deps ones.
"$venv/bin/python" - "$wheels" <<'PY'
import importlib.metadata
import re
import sys
from pathlib import Path

NO_DEPS = {"sagemaker-core"}
requirements = importlib.metadata.requires("djl-sagemaker-operator") or []
# Extras carry an `extra == "..."` marker; the runtime requirements have none.
runtime = [r for r in requirements if "extra" not in r.partition(";")[2]]


def name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()


out = Path(sys.argv[1])
(out / "requirements.txt").write_text("".join(f"{r}\n" for r in runtime if name(r) not in NO_DEPS))
(out / "no-deps.txt").write_text("".join(f"{r}\n" for r in runtime if name(r) in NO_DEPS))
PY
# pip warns here that sagemaker-core is missing; it comes next, without its dependencies.
$pip install --quiet -c "$src/requirements.lock" -r "$wheels/requirements.txt"
$pip install --quiet --no-deps -c "$src/requirements.lock" -r "$wheels/no-deps.txt"

# Fail the build, not the pod, when the install is broken.
"$venv/bin/djl-operator" crd > /dev/null
