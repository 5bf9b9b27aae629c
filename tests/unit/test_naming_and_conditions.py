"""Names, ownership tags, conditions and error classification: pure functions."""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError

from djl_operator import conditions, naming
from djl_operator.aws_errors import ErrorKind, classify, is_capacity_failure
from djl_operator.conditions import ConditionState

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


UID_A = "0b7c1d6e-5f4a-4e3b-9c2d-1a0f9e8d7c6b"
UID_B = "7a1e2f3c-0d9b-4c8a-8e7f-6b5a4d3c2b1a"


@pytest.mark.parametrize(
    ("cr_name", "expected_prefix"),
    [("demo", "demo-"), ("bart.large", "bart-large-"), ("a" * 80, "a" * 43 + "-"), ("x--y-", "x-y-")],
)
def test_versioned_names_are_valid_and_stable(cr_name: str, expected_prefix: str) -> None:
    name = naming.versioned_name(cr_name, UID_A, "0123456789abcdef")
    assert SAGEMAKER_NAME.match(name) and len(name) <= 63
    assert name.startswith(expected_prefix) and name.endswith(f"-{naming.owner_id(UID_A)}-0123456789")
    assert name == naming.versioned_name(cr_name, UID_A, "0123456789abcdef")


def test_two_resources_with_the_same_name_and_spec_never_share_a_model_or_config() -> None:
    """staging/demo and prod/demo with one spec: same content hash, different owners, different names."""
    assert naming.versioned_name("demo", UID_A, "0123456789") != naming.versioned_name("demo", UID_B, "0123456789")


@pytest.mark.parametrize(
    ("namespace", "name", "explicit", "expected_start"),
    [
        ("default", "bart", None, "default-bart-"),
        ("team.a", "my.model", None, "team-a-my-model-"),
        ("default", "bart", "my-endpoint", "my-endpoint"),
    ],
)
def test_endpoint_name(namespace: str, name: str, explicit: str | None, expected_start: str) -> None:
    derived = naming.endpoint_name(namespace, name, explicit)
    assert derived.startswith(expected_start)
    assert SAGEMAKER_NAME.match(derived) and len(derived) <= 63
    if explicit:
        assert derived == explicit
    else:
        assert len(derived) == len(expected_start) + naming.ENDPOINT_HASH_LENGTH


@pytest.mark.parametrize(
    ("first", "second"),
    [(("team", "a-x"), ("team-a", "x")), (("a.b", "c"), ("a", "b.c")), (("n" * 40, "m" * 40), ("n" * 40, "m" * 41))],
)
def test_derived_endpoint_names_never_collide(first: tuple[str, str], second: tuple[str, str]) -> None:
    assert naming.endpoint_name(*first) != naming.endpoint_name(*second)


def test_long_endpoint_names_are_shortened_with_a_hash() -> None:
    first = naming.endpoint_name("n" * 40, "m" * 40)
    assert len(first) == 63 and SAGEMAKER_NAME.match(first)


@pytest.mark.parametrize(
    ("arn", "kind", "name"),
    [
        ("arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-ep", "endpoint", "my-ep"),
        ("arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/my-ep", "endpoint", None),
        ("arn:aws:s3:::bucket/endpoint/x", "endpoint", None),
        ("not-an-arn", "model", None),
    ],
)
def test_name_from_arn(arn: str, kind: str, name: str | None) -> None:
    assert naming.name_from_arn(arn, kind) == name


def test_an_empty_uid_owns_nothing() -> None:
    assert not naming.is_owned_by([{"Key": naming.TAG_OWNER_UID, "Value": ""}], "")


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
