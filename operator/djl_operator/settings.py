"""Operator settings, read once from the environment at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from djl_operator.policy import Policy


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    # How often to re-read an endpoint that is changing (Creating, Updating, Deleting).
    poll_interval: float = 30.0
    # The resync timer: drift detection for settled resources.
    resync_interval: float = 300.0
    # Wait before retrying a capacity failure.
    capacity_backoff: float = 600.0
    # Wait before retrying after AccessDenied (someone has to fix IAM first).
    access_denied_backoff: float = 300.0
    # Wait before retrying after throttling or a 5xx that outlived botocore's retries.
    transient_backoff: float = 15.0
    # The longest wait of the per-resource exponential backoff after repeated transient failures.
    backoff_cap: float = 600.0
    # Threads for blocking boto3 calls.
    workers: int = 16
    # spec.model.snapshot: copies running at once (each on its own thread), and the multipart part size.
    snapshot_workers: int = 2
    snapshot_part_bytes: int = 8 * 2**20
    # What a DjlEndpoint may run (DJL_OPERATOR_POLICY_FILE; safe defaults without one).
    policy: Policy = field(default_factory=Policy)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            poll_interval=_seconds("DJL_OPERATOR_POLL_SECONDS", cls.poll_interval),
            resync_interval=_seconds("DJL_OPERATOR_RESYNC_SECONDS", cls.resync_interval),
            capacity_backoff=_seconds("DJL_OPERATOR_CAPACITY_BACKOFF_SECONDS", cls.capacity_backoff),
            access_denied_backoff=_seconds("DJL_OPERATOR_ACCESS_DENIED_BACKOFF_SECONDS", cls.access_denied_backoff),
            transient_backoff=_seconds("DJL_OPERATOR_TRANSIENT_BACKOFF_SECONDS", cls.transient_backoff),
            backoff_cap=_seconds("DJL_OPERATOR_BACKOFF_CAP_SECONDS", cls.backoff_cap),
            workers=int(_seconds("DJL_OPERATOR_WORKERS", cls.workers)),
            snapshot_workers=int(_seconds("DJL_OPERATOR_SNAPSHOT_WORKERS", cls.snapshot_workers)),
            snapshot_part_bytes=int(
                _seconds("DJL_OPERATOR_SNAPSHOT_PART_MIB", cls.snapshot_part_bytes / 2**20) * 2**20
            ),
            policy=Policy.from_env(),
        )
