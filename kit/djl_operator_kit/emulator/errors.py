"""Errors the emulator answers with, in the shapes AWS uses.

SageMaker's control plane reports "not found" as ``ValidationException`` with a
message naming the resource ARN (none of the hosting operations declares
``ResourceNotFound``), so clients key on the code *and* the message prefix; the
builders below keep those prefixes byte-for-byte what AWS sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F")


@dataclass
class ApiError(Exception):
    """An AWS error response: ``code`` becomes ``__type`` (JSON) or ``x-amzn-ErrorType`` (REST)."""

    code: str
    message: str
    status: int = 400
    # Extra modeled members of the error shape (e.g. ModelError's OriginalStatusCode).
    fields: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def operation(table: Mapping[str, F], service: str, name: str) -> F:
    """The handler of operation ``name`` of one back end, or the error an unknown operation gets."""
    handler = table.get(name)
    if handler is None:
        raise ApiError("UnknownOperationException", f"The emulator does not implement {service}.{name}.")
    return handler


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def not_found(kind: str, arn: str) -> ApiError:
    """``kind`` is AWS's wording: "model", "endpoint configuration", "endpoint"."""
    return validation(f'Could not find {kind} "{arn}".')


def already_exists(kind: str, arn: str) -> ApiError:
    return validation(f'Cannot create already existing {kind} "{arn}".')


def endpoint_in_progress(arn: str) -> ApiError:
    # AWS uses this one message for UpdateEndpoint *and* DeleteEndpoint on an
    # endpoint that is Creating/Updating/RollingBack/Deleting.
    return validation(f'Cannot update in-progress endpoint "{arn}".')


def endpoint_failed(arn: str) -> ApiError:
    # "DeleteEndpoint is the only operation that can be performed on a failed endpoint."
    return validation(f'Cannot update failed endpoint "{arn}".')


def throttled() -> ApiError:
    return ApiError("ThrottlingException", "Rate exceeded")


def access_denied(operation: str, resource_arn: str, account_id: str, action_prefix: str = "sagemaker") -> ApiError:
    """``action_prefix`` is the IAM service prefix: "sagemaker", "tag" (Tagging API), "sts"."""
    # IAM names the resource only for actions that have resource-level permissions.
    action = f"{action_prefix}:{operation}"
    on = f" on resource: {resource_arn}" if resource_arn else ""
    return ApiError(
        "AccessDeniedException",
        f"User: arn:aws:sts::{account_id}:assumed-role/emulator/session is not authorized to perform: "
        f"{action}{on} because no identity-based policy allows the {action} action",
    )


def internal_failure(operation: str) -> ApiError:
    return ApiError("InternalFailure", f"An internal error occurred while processing {operation}.", 500)


def instance_quota_exceeded(instance_type: str, limit: int, used: int, delta: int) -> ApiError:
    return ApiError(
        "ResourceLimitExceeded",
        f"The account-level service limit '{instance_type} for endpoint usage' is {limit} Instances, "
        f"with current utilization of {used} Instances and a request delta of {delta} Instances. "
        "Please use AWS Service Quotas to request an increase for this quota. If AWS Service Quotas "
        "is not available, contact AWS support to request an increase for this quota.",
    )
