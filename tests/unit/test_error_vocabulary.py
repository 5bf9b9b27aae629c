"""The error vocabulary: what each kind of failure does to status and to the retry."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from djl_operator.api import DjlEndpointStatus, Phase
from djl_operator.errors import ArtifactStoreError, OwnershipConflict, SpecError
from djl_operator.reconcile import Next, _error_outcome, _Status
from djl_operator.settings import Settings

SETTINGS = Settings(access_denied_backoff=300, transient_backoff=15)


def _client_error(code: str, message: str, operation: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


# (id, error, next, delay, Ready reason, Stalled, message contains)
CASES = [
    ("invalid spec", SpecError("spec.model.engine", "DeepSpeed cannot serve fill-mask"),
     Next.STALLED, 0, "InvalidSpec", True, "spec.model.engine"),
    ("missing bucket", ArtifactStoreError("spec.aws.artifactBucket", "bucket 'b' does not exist",
                                          code="NoSuchBucket", bucket="b"),
     Next.RETRY, 300, "ArtifactStoreError", False, "spec.aws.artifactBucket"),
    ("s3 denied", ArtifactStoreError("spec.aws.artifactBucket", "access denied: may not s3:PutObject",
                                     code="AccessDenied", bucket="b"),
     Next.RETRY, 300, "AccessDenied", False, "s3:PutObject"),
    ("sagemaker denied", _client_error("AccessDeniedException", "not authorized", "CreateModel"),
     Next.RETRY, 300, "AccessDenied", False, "sagemaker:CreateModel"),
    ("aws rejects the request",
     _client_error("ValidationException", "1 validation error detected", "CreateEndpointConfig"),
     Next.STALLED, 0, "AwsRequestRejected", True, "CreateEndpointConfig refused"),
    ("quota", _client_error("ResourceLimitExceeded", "account-level service limit", "CreateEndpoint"),
     Next.STALLED, 0, "AwsRequestRejected", True, "service limit"),
    ("throttled", _client_error("ThrottlingException", "Rate exceeded", "DescribeEndpoint"),
     Next.BACKOFF, 0, "Retrying", False, "ThrottlingException"),
    ("5xx", _client_error("InternalFailure", "oops", "CreateModel", 500),
     Next.BACKOFF, 0, "Retrying", False, "InternalFailure"),
    ("busy", _client_error("ValidationException", 'Cannot update in-progress endpoint "arn"', "UpdateEndpoint"),
     Next.BACKOFF, 0, "Retrying", False, "in-progress"),
    ("unreachable", EndpointConnectionError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com"),
     Next.BACKOFF, 0, "Retrying", False, "unreachable"),
    ("bug", KeyError("EndpointStatus"), Next.UNEXPECTED, 0, "Retrying", False, "KeyError"),
    ("someone else's model has our name", OwnershipConflict("model", "demo-1a2b3c4d-0123456789"),
     Next.STALLED, 0, "ResourceNameConflict", True, "not owned by this resource"),
    ("someone else's endpoint has our name", OwnershipConflict("endpoint", "ns-demo-1a2b3c4d"),
     Next.STALLED, 0, "EndpointNameConflict", True, "ns-demo-1a2b3c4d"),
    ("s3 listing denied is an s3 action", _client_error("AccessDenied", "denied", "ListObjectsV2", 403),
     Next.RETRY, 300, "AccessDenied", False, "s3:ListObjectsV2"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("error", "next_step", "delay", "reason", "stalled", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_outcome(
    error: BaseException, next_step: Next, delay: float, reason: str, stalled: bool, text: str
) -> None:
    status = _Status(DjlEndpointStatus(), 3, dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    outcome = _error_outcome(error, status, SETTINGS, Phase.CREATING)
    conditions = {c["type"]: c for c in outcome.status["conditions"]}
    assert outcome.next is next_step
    assert outcome.delay == delay
    assert conditions["Ready"]["status"] == "False" and conditions["Ready"]["reason"] == reason
    assert conditions["Stalled"]["status"] == ("True" if stalled else "False")
    assert conditions["Reconciling"]["status"] == ("False" if stalled else "True")
    assert text in outcome.message
    assert outcome.status["observedGeneration"] == 3
    assert (outcome.error is error) is (next_step is Next.UNEXPECTED)


@pytest.mark.parametrize(
    "error",
    [
        _client_error("AccessDeniedException", "not authorized", "DeleteEndpoint"),
        ArtifactStoreError("spec.aws.artifactBucket", "access denied", code="AccessDenied", bucket="b"),
    ],
)
def test_a_denied_delete_says_how_to_release_the_resource(error: BaseException) -> None:
    status = _Status(DjlEndpointStatus(), 3, dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    outcome = _error_outcome(error, status, SETTINGS, Phase.DELETING)
    assert outcome.next is Next.RETRY
    assert "deletionPolicy to Retain" in outcome.message
    assert outcome.events and outcome.events[0][0] == "Warning" and "Retain" in outcome.events[0][2]


@pytest.mark.parametrize(
    "case", [c for c in CASES if c[2] is Next.STALLED and not isinstance(c[1], SpecError)], ids=lambda c: c[0]
)
def test_what_would_stall_a_reconcile_is_retried_while_deleting(case: tuple[object, ...]) -> None:
    """The finalizer must run until the AWS side is gone: it never stalls, and status says it retries."""
    _, error, _, _, reason, _, text = case
    assert isinstance(error, BaseException)
    status = _Status(DjlEndpointStatus(), 3, dt.datetime(2026, 11, 25, tzinfo=dt.UTC))
    outcome = _error_outcome(error, status, SETTINGS, Phase.DELETING)
    conditions = {c["type"]: c for c in outcome.status["conditions"]}
    assert outcome.next is Next.RETRY and outcome.delay == SETTINGS.access_denied_backoff
    assert conditions["Stalled"]["status"] == "False" and conditions["Reconciling"]["status"] == "True"
    assert conditions["Ready"]["reason"] == reason and str(text) in outcome.message
