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


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    # How often to re-read an endpoint that is changing (Creating, Updating, Deleting).
    poll_interval: float = 30.0
    # A settled resource's own full reconcile (a describe each): hours, since the batched status
    # read below finds changed endpoints in between.
    resync_interval: float = 21600.0
    # The batched status read (ListEndpoints, 100 endpoints a call): a changed, new or vanished
    # endpoint makes its resource due at once.
    status_read_interval: float = 300.0
    # SQS queue an EventBridge rule forwards "SageMaker Endpoint State Change" events to (None: poll only).
    events_queue_url: str | None = None
    # With a queue: how often an endpoint in transition is still re-read (the safety net for lost events).
    events_poll_interval: float = 300.0
    # Sharding: this replica reconciles the resources whose shard (a stable hash of the uid) is shard_index.
    shard_index: int = 0
    shard_count: int = 1
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
    # Connections to the Kubernetes API at most: a burst of new resources (every one patched at once)
    # would otherwise open one each (kopf's default is unlimited; each TLS connection costs ~200 KB).
    # Each watch stream holds one for good: keep it well above the number of watched namespaces.
    api_connections: int = 128
    # spec.model.snapshot: copies running at once (each on its own thread), and the multipart part size.
    snapshot_workers: int = 2
    snapshot_part_bytes: int = 8 * 2**20
    # What a DjlEndpoint may run (DJL_OPERATOR_POLICY_FILE; safe defaults without one).
    policy: Policy = field(default_factory=Policy)

    def __post_init__(self) -> None:
        if self.shard_count < 1 or not 0 <= self.shard_index < self.shard_count:
            raise ValueError(
                f"--shard-index must be within 0..{self.shard_count - 1} and --shard-count at least 1, "
                f"got {self.shard_index} of {self.shard_count}"
            )

    @property
    def status_poll_interval(self) -> float:
        """How often an endpoint in transition is re-read: rarely when its events arrive by themselves."""
        return self.events_poll_interval if self.events_queue_url else self.poll_interval

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            poll_interval=_seconds("DJL_OPERATOR_POLL_SECONDS", cls.poll_interval),
            resync_interval=_seconds("DJL_OPERATOR_RESYNC_SECONDS", cls.resync_interval),
            status_read_interval=_seconds("DJL_OPERATOR_STATUS_READ_SECONDS", cls.status_read_interval),
            events_queue_url=os.environ.get("DJL_OPERATOR_EVENTS_QUEUE_URL") or None,
            events_poll_interval=_seconds("DJL_OPERATOR_EVENTS_POLL_SECONDS", cls.events_poll_interval),
            shard_index=_count("DJL_OPERATOR_SHARD_INDEX", cls.shard_index),
            shard_count=_count("DJL_OPERATOR_SHARD_COUNT", cls.shard_count),
            capacity_backoff=_seconds("DJL_OPERATOR_CAPACITY_BACKOFF_SECONDS", cls.capacity_backoff),
            access_denied_backoff=_seconds("DJL_OPERATOR_ACCESS_DENIED_BACKOFF_SECONDS", cls.access_denied_backoff),
            transient_backoff=_seconds("DJL_OPERATOR_TRANSIENT_BACKOFF_SECONDS", cls.transient_backoff),
            backoff_cap=_seconds("DJL_OPERATOR_BACKOFF_CAP_SECONDS", cls.backoff_cap),
            workers=int(_seconds("DJL_OPERATOR_WORKERS", cls.workers)),
            api_connections=int(_seconds("DJL_OPERATOR_API_CONNECTIONS", cls.api_connections)),
            snapshot_workers=int(_seconds("DJL_OPERATOR_SNAPSHOT_WORKERS", cls.snapshot_workers)),
            snapshot_part_bytes=int(
                _seconds("DJL_OPERATOR_SNAPSHOT_PART_MIB", cls.snapshot_part_bytes / 2**20) * 2**20
            ),
            policy=Policy.from_env(),
        )
