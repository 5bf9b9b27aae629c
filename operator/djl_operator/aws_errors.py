"""Sorting AWS errors into what the reconciler does about them.

SageMaker reports "not found" and "already exists" as ``ValidationException``
with a message, so the classification reads messages as well as codes.
"""

from __future__ import annotations

from enum import Enum

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)


class ErrorKind(Enum):
    NOT_FOUND = "NotFound"
    ALREADY_EXISTS = "AlreadyExists"
    RETRYABLE = "Retryable"  # throttling, 5xx, timeouts: back off and retry
    ACCESS_DENIED = "AccessDenied"
    IN_USE = "InUse"  # the resource is busy (e.g. updating): wait
    INVALID = "Invalid"  # AWS refused the request as given: stalled until the spec changes
    UNKNOWN = "Unknown"


_NOT_FOUND_PREFIXES = ("could not find", "not found")
_ALREADY_EXISTS_PREFIXES = ("cannot create already existing",)
_RETRYABLE_CODES = {
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "SlowDown",
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    "ConcurrentUpdateException",  # Application Auto Scaling: another change of the target is in flight
}
_ACCESS_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"}
_NOT_FOUND_CODES = {"ResourceNotFound", "NoSuchKey", "NoSuchBucket", "404", "NotFound", "ObjectNotFoundException"}
_INVALID_CODES = {"ValidationException", "ResourceLimitExceeded", "InvalidParameterValue", "InvalidBucketName"}


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__


def error_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
    return str(exc)


def classify(exc: BaseException) -> ErrorKind:
    if isinstance(exc, ReadTimeoutError | BotoConnectionError):
        return ErrorKind.RETRYABLE
    if not isinstance(exc, ClientError):
        return ErrorKind.RETRYABLE if isinstance(exc, BotoCoreError) else ErrorKind.UNKNOWN
    code = error_code(exc)
    message = error_message(exc).lower()
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in _RETRYABLE_CODES or status >= 500:
        return ErrorKind.RETRYABLE
    if code in _ACCESS_DENIED_CODES:
        return ErrorKind.ACCESS_DENIED
    if code in _NOT_FOUND_CODES or (code == "ValidationException" and message.startswith(_NOT_FOUND_PREFIXES)):
        return ErrorKind.NOT_FOUND
    if code == "ValidationException" and message.startswith(_ALREADY_EXISTS_PREFIXES):
        return ErrorKind.ALREADY_EXISTS
    if code == "ResourceInUse" or (code == "ValidationException" and "cannot update in-progress" in message):
        return ErrorKind.IN_USE
    if code in _INVALID_CODES:
        return ErrorKind.INVALID
    return ErrorKind.UNKNOWN


def is_capacity_failure(failure_reason: str | None) -> bool:
    """SageMaker words capacity shortages this way (the SDK keys on "CapacityError")."""
    text = (failure_reason or "").lower()
    return "capacityerror" in text or "insufficient capacity" in text or "unable to provision" in text
