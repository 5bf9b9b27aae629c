"""KEP-1623 conditions: ``lastTransitionTime`` moves only when ``status`` flips."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


class Reason(StrEnum):
    """Every reason a condition can carry: the closed vocabulary the README's table is generated from.

    Each member's meaning is the text after it (``describe``); the condition it goes with says
    whether it is progress (Reconciling=True), a stall (Stalled=True) or readiness (Ready=True).
    """

    ENDPOINT_IN_SERVICE = "EndpointInService"
    PACKAGING = "Packaging"
    CREATING = "Creating"
    UPDATING = "Updating"
    SYSTEM_UPDATING = "SystemUpdating"
    ROLLING_BACK = "RollingBack"
    WAITING_FOR_DELETION = "WaitingForDeletion"
    RECREATING_FAILED_ENDPOINT = "RecreatingFailedEndpoint"
    INSUFFICIENT_CAPACITY = "InsufficientCapacity"
    RETRYING_CAPACITY = "RetryingCapacity"
    ENDPOINT_OUT_OF_SERVICE = "EndpointOutOfService"
    RETRYING = "Retrying"
    ACCESS_DENIED = "AccessDenied"
    ARTIFACT_STORE_ERROR = "ArtifactStoreError"
    DELETING = "Deleting"
    UPDATE_ROLLED_BACK = "UpdateRolledBack"
    ROLLED_BACK_BY_ALARM = "RolledBackByAlarm"
    UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"
    ENDPOINT_FAILED = "EndpointFailed"
    ENDPOINT_NAME_CONFLICT = "EndpointNameConflict"
    RESOURCE_NAME_CONFLICT = "ResourceNameConflict"
    AWS_REQUEST_REJECTED = "AwsRequestRejected"
    INVALID_SPEC = "InvalidSpec"
    POLICY_VIOLATION = "PolicyViolation"
    # spec.model.snapshot (djl_operator.snapshot)
    SNAPSHOTTING = "Snapshotting"
    HUB_TOKEN_UNAVAILABLE = "HubTokenUnavailable"
    HUB_ACCESS_DENIED = "HubAccessDenied"
    HUB_AUTH_REQUIRED = "HubAuthRequired"
    HUB_NOT_FOUND = "HubNotFound"
    HUB_REQUEST_REFUSED = "HubRequestRefused"


# (condition that is True with it, what it means): the README's reason table.
REASON_DOCS: dict[Reason, tuple[str, str]] = {
    Reason.ENDPOINT_IN_SERVICE: (
        READY,
        "the endpoint is InService on the config the current spec asks for (also while autoscaling changes its count)",
    ),
    Reason.PACKAGING: (RECONCILING, "the model artifact is being built and uploaded"),
    Reason.CREATING: (RECONCILING, "the endpoint is being created (before the first write, too)"),
    Reason.UPDATING: (RECONCILING, "a blue/green update to the new config is in progress; the old config serves"),
    Reason.SYSTEM_UPDATING: (RECONCILING, "SageMaker is updating the endpoint on its own"),
    Reason.ROLLING_BACK: (RECONCILING, "SageMaker is rolling a failed update back"),
    Reason.WAITING_FOR_DELETION: (RECONCILING, "an endpoint of the same name is being deleted; then ours is created"),
    Reason.RECREATING_FAILED_ENDPOINT: (RECONCILING, "the spec changed after a failure: the endpoint is replaced"),
    Reason.INSUFFICIENT_CAPACITY: (
        RECONCILING,
        "SageMaker had no capacity; the operator retries by itself after the capacity backoff",
    ),
    Reason.RETRYING_CAPACITY: (RECONCILING, "the capacity backoff has passed: the failed endpoint is recreated"),
    Reason.ENDPOINT_OUT_OF_SERVICE: (RECONCILING, "the endpoint is OutOfService; the operator keeps looking"),
    Reason.RETRYING: (RECONCILING, "throttling, a 5xx or a timeout outlived botocore's retries; backing off"),
    Reason.ACCESS_DENIED: (RECONCILING, "IAM denied the named action; retried slowly until the policy is fixed"),
    Reason.ARTIFACT_STORE_ERROR: (
        RECONCILING,
        "the artifact bucket cannot be used as configured; retried slowly (fixing the bucket needs no spec change)",
    ),
    Reason.DELETING: (RECONCILING, "the resource is being deleted; its AWS resources go first"),
    Reason.UPDATE_ROLLED_BACK: (STALLED, "SageMaker rolled the update back; the old config still serves"),
    Reason.ROLLED_BACK_BY_ALARM: (
        STALLED,
        "a spec.rollout.rollbackAlarms alarm fired during the rollout; SageMaker rolled it back and the old "
        "config still serves",
    ),
    Reason.UPDATE_ROLLBACK_FAILED: (STALLED, "the rollback of an update failed; a mix of old and new may serve"),
    Reason.ENDPOINT_FAILED: (STALLED, "the endpoint failed (SageMaker's FailureReason in the message)"),
    Reason.ENDPOINT_NAME_CONFLICT: (STALLED, "an endpoint of the name exists and is not this resource's"),
    Reason.RESOURCE_NAME_CONFLICT: (STALLED, "a model or config of the name exists and is not this resource's"),
    Reason.AWS_REQUEST_REJECTED: (STALLED, "SageMaker refused a request as invalid (a limit, a bad value)"),
    Reason.INVALID_SPEC: (STALLED, "the spec is invalid; the message names the field. No AWS call is made"),
    Reason.POLICY_VIOLATION: (STALLED, "the operator policy denies the spec; the message names the field and rule"),
    Reason.SNAPSHOTTING: (
        RECONCILING,
        "the Hub commit is being copied to S3 (status.snapshot has files and bytes done); then the endpoint deploys",
    ),
    Reason.HUB_TOKEN_UNAVAILABLE: (
        RECONCILING,
        "the tokenSecretRef Secret or key is missing or unreadable; retried slowly (creating it needs no spec change)",
    ),
    Reason.HUB_ACCESS_DENIED: (
        RECONCILING,
        "the Hub refused the token (401/403); retried slowly (fixing the Secret or the grant needs no spec change)",
    ),
    Reason.HUB_AUTH_REQUIRED: (
        STALLED,
        "the model is gated or private and no tokenSecretRef is set (the Hub's 401/403)",
    ),
    Reason.HUB_NOT_FOUND: (STALLED, "the Hub has no such model or revision (the Hub's 404 and message)"),
    Reason.HUB_REQUEST_REFUSED: (STALLED, "the Hub refused the request for another reason (its status and message)"),
}


def reasons_markdown() -> str:
    """The README's reason table (between ``<!-- reasons:start -->`` and ``<!-- reasons:end -->``)."""
    rows = ["| Reason | Condition | Meaning |", "|---|---|---|"]
    rows += [f"| `{reason.value}` | {REASON_DOCS[reason][0]} | {REASON_DOCS[reason][1]} |" for reason in Reason]
    return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class ConditionState:
    status: bool
    reason: Reason
    message: str = ""


def merge(
    existing: list[dict[str, Any]],
    desired: dict[str, ConditionState],
    *,
    now: str,
    generation: int,
) -> list[dict[str, Any]]:
    """The new conditions list; conditions not named in ``desired`` are kept as they are."""
    by_type = {c["type"]: c for c in existing}
    result: list[dict[str, Any]] = []
    for ctype, state in desired.items():
        status = "True" if state.status else "False"
        previous = by_type.get(ctype)
        flipped = previous is None or previous.get("status") != status
        result.append(
            {
                "type": ctype,
                "status": status,
                "reason": state.reason,
                "message": state.message[:32768],
                "lastTransitionTime": now if flipped else previous["lastTransitionTime"],  # type: ignore[index]
                "observedGeneration": generation,
            }
        )
    result += [c for t, c in by_type.items() if t not in desired]
    return result


def find(conditions: list[dict[str, Any]], ctype: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == ctype), None)
