"""kstatus itself (sigs.k8s.io/cli-utils/pkg/kstatus/status), built once by scripts/build-kstatus.sh.

Flux, kpt and ``cli-utils status`` all compute a resource's status with this
library; the tests ask it directly instead of re-implementing its rules.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def binary() -> str:
    built = subprocess.run(
        [str(REPO / "scripts" / "build-kstatus.sh")], check=True, capture_output=True, text=True, timeout=600
    )
    return built.stdout.strip().splitlines()[-1]


def compute(obj: dict[str, Any]) -> tuple[str, str]:
    """kstatus's (status, message) for one object: InProgress, Current, Failed, ..."""
    done = subprocess.run([binary()], input=json.dumps(obj), check=True, capture_output=True, text=True, timeout=60)
    result = json.loads(done.stdout)
    return result["status"], result["message"]
