"""Names, ownership tags, conditions and error classification: pure functions."""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError

from djl_operator import conditions, naming
from djl_operator.aws_errors import ErrorKind, classify, is_capacity_failure
from djl_operator.conditions import ConditionState

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


@pytest.mark.parametrize(
    ("cr_name", "expected_prefix"),
    [("demo", "demo-"), ("bart.large", "bart-large-"), ("a" * 80, "a" * 52 + "-"), ("x--y-", "x-y-")],
)
def test_versioned_names_are_valid_and_stable(cr_name: str, expected_prefix: str) -> None:
    name = naming.versioned_name(cr_name, "0123456789abcdef")
    assert SAGEMAKER_NAME.match(name) and len(name) <= 63
    assert name.startswith(expected_prefix) and name.endswith("-0123456789")
    assert name == naming.versioned_name(cr_name, "0123456789abcdef")


@pytest.mark.parametrize(
    ("namespace", "name", "explicit", "expected"),
    [
        ("default", "bart", None, "default-bart"),
        ("team.a", "my.model", None, "team-a-my-model"),
        ("default", "bart", "my-endpoint", "my-endpoint"),
    ],
)
def test_endpoint_name(namespace: str, name: str, explicit: str | None, expected: str) -> None:
    assert naming.endpoint_name(namespace, name, explicit) == expected


def test_long_endpoint_names_are_shortened_with_a_hash() -> None:
    first = naming.endpoint_name("n" * 40, "m" * 40)
    second = naming.endpoint_name("n" * 40, "m" * 41)
    assert len(first) == 63 and SAGEMAKER_NAME.match(first)
    assert first != second


def test_content_hash_ignores_key_order() -> None:
    assert naming.content_hash({"a": 1, "b": 2}) == naming.content_hash({"b": 2, "a": 1})
    assert naming.content_hash({"a": 1}) != naming.content_hash({"a": 2})


def test_owner_tags_win_over_user_tags() -> None:
    tags = naming.owner_tags("uid-1", "ns", "demo", "h1", {"team": "ml", naming.TAG_OWNER_UID: "forged"})
    assert tags["team"] == "ml"
    assert tags[naming.TAG_OWNER_UID] == "uid-1"
    as_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    assert naming.is_owned_by(as_list, "uid-1") and not naming.is_owned_by(as_list, "uid-2")


def test_last_transition_time_moves_only_on_flips() -> None:
    first = conditions.merge([], {"Ready": ConditionState(False, "Creating")}, now="T1", generation=1)
    same = conditions.merge(first, {"Ready": ConditionState(False, "StillCreating", "m")}, now="T2", generation=1)
    flipped = conditions.merge(same, {"Ready": ConditionState(True, "EndpointInService")}, now="T3", generation=2)
    assert first[0]["lastTransitionTime"] == "T1"
    assert same[0]["lastTransitionTime"] == "T1" and same[0]["reason"] == "StillCreating"
    assert flipped[0]["lastTransitionTime"] == "T3" and flipped[0]["observedGeneration"] == 2


def test_unrelated_conditions_are_kept() -> None:
    existing = [{"type": "Custom", "status": "True", "reason": "X", "message": "", "lastTransitionTime": "T0"}]
    merged = conditions.merge(existing, {"Ready": ConditionState(True, "R")}, now="T1", generation=1)
    assert [c["type"] for c in merged] == ["Ready", "Custom"]


def _client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_client_error("ValidationException", 'Could not find endpoint "arn:aws:..."'), ErrorKind.NOT_FOUND),
        (_client_error("ValidationException", 'Could not find model "m".'), ErrorKind.NOT_FOUND),
        (
            _client_error("ValidationException", 'Cannot create already existing endpoint "arn"'),
            ErrorKind.ALREADY_EXISTS,
        ),
        (_client_error("ValidationException", "1 validation error detected"), ErrorKind.INVALID),
        (_client_error("ResourceLimitExceeded", "quota"), ErrorKind.INVALID),
        (_client_error("ThrottlingException", "Rate exceeded"), ErrorKind.RETRYABLE),
        (_client_error("InternalFailure", "", 500), ErrorKind.RETRYABLE),
        (_client_error("AccessDeniedException", "not authorized"), ErrorKind.ACCESS_DENIED),
        (_client_error("AccessDenied", "denied", 403), ErrorKind.ACCESS_DENIED),
        (_client_error("ResourceInUse", "busy"), ErrorKind.IN_USE),
        (_client_error("NoSuchBucket", "nope", 404), ErrorKind.NOT_FOUND),
    ],
)
def test_classify(error: ClientError, kind: ErrorKind) -> None:
    assert classify(error) is kind


@pytest.mark.parametrize(
    ("reason", "capacity"),
    [
        ("CapacityError: Unable to provision requested ML compute capacity.", True),
        ("Insufficient capacity for ml.g5.12xlarge", True),
        ("The primary container for production variant AllTraffic did not pass the ping health check.", False),
        (None, False),
    ],
)
def test_capacity_wording(reason: str | None, capacity: bool) -> None:
    assert is_capacity_failure(reason) is capacity
