"""The operator's IAM policy allows exactly the AWS actions the operator uses, no wildcards.

"Uses" is measured, not listed by hand: the operator signs with its own access key id, the
emulator records who made every call, and tests/plugins/aws_calls.py gathers the operator's
calls from every test of the session that had an emulator. This file is named to run last in
tests/e2e/; it also drives its own create -> update -> delete lifecycle first, so it means
something when run alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.aws_calls import OPERATOR_CALLS
from tests.plugins.operator import OPERATOR_ACCESS_KEY, Cluster, endpoint_manifest

POLICY_PATH = Path(__file__).resolve().parents[2] / "manifests" / "iam" / "operator-policy.json"

# S3 API operations -> the IAM action that authorizes each (the names differ).
S3_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "HeadBucket": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
}

# Actions AWS authorizes on the caller's behalf during a call, which no call log shows:
# passing the execution role, tagging on create, and KMS use when spec.aws.kmsKeyId is set
# (S3 generates the SSE-KMS data key; SageMaker grants itself the endpoint volume key).
IMPLIED = {
    ("sagemaker", "CreateModel"): {"iam:PassRole", "sagemaker:AddTags"},
    ("sagemaker", "CreateEndpointConfig"): {"sagemaker:AddTags"},
    ("sagemaker", "CreateEndpoint"): {"sagemaker:AddTags", "kms:CreateGrant", "kms:DescribeKey"},
    ("sagemaker", "UpdateEndpoint"): {"kms:CreateGrant", "kms:DescribeKey"},
    ("s3", "PutObject"): {"kms:GenerateDataKey"},
}


def iam_actions(service: str, operation: str) -> set[str]:
    """Every IAM action one API call needs."""
    if service in ("sagemaker", "sagemaker-runtime"):
        direct = f"sagemaker:{operation}"
    elif service == "resourcegroupstaggingapi" and operation == "GetResources":
        direct = "tag:GetResources"
    elif service == "s3":
        if operation not in S3_ACTIONS:
            raise AssertionError(f"the operator called s3:{operation}; add its IAM action to S3_ACTIONS")
        direct = S3_ACTIONS[operation]
    else:
        raise AssertionError(f"the operator called {service}:{operation}, a service the policy does not cover")
    return {direct} | IMPLIED.get((service, operation), set())


def policy_statements() -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = json.loads(POLICY_PATH.read_text())["Statement"]
    return statements


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def policy_actions() -> set[str]:
    return {a for s in policy_statements() if s["Effect"] == "Allow" for a in _listed(s["Action"])}


@pytest.mark.parametrize(
    ("service", "operation", "actions"),
    [
        ("sagemaker", "DescribeEndpoint", {"sagemaker:DescribeEndpoint"}),
        ("sagemaker", "CreateModel", {"sagemaker:CreateModel", "sagemaker:AddTags", "iam:PassRole"}),
        ("sagemaker", "ListTags", {"sagemaker:ListTags"}),
        ("s3", "HeadObject", {"s3:GetObject"}),
        ("s3", "HeadBucket", {"s3:ListBucket"}),
        ("s3", "ListObjectsV2", {"s3:ListBucket"}),
        ("s3", "DeleteObjects", {"s3:DeleteObject"}),
        ("s3", "PutObject", {"s3:PutObject", "kms:GenerateDataKey"}),
    ],
)
def test_api_calls_map_to_iam_actions(service: str, operation: str, actions: set[str]) -> None:
    assert iam_actions(service, operation) == actions


@pytest.mark.parametrize(("service", "operation"), [("s3", "CreateBucket"), ("sts", "AssumeRole")])
def test_unmapped_calls_fail_loudly(service: str, operation: str) -> None:
    with pytest.raises(AssertionError, match=operation):
        iam_actions(service, operation)


def test_policy_has_no_wildcard_actions_or_denies() -> None:
    for statement in policy_statements():
        assert statement["Effect"] == "Allow", statement["Sid"]
        for action in _listed(statement["Action"]):
            assert "*" not in action, f"{statement['Sid']}: wildcard action {action!r}"
            assert ":" in action, action


def test_unscoped_resources_only_where_iam_offers_no_scope() -> None:
    for statement in policy_statements():
        if "*" in _listed(statement["Resource"]):
            assert set(_listed(statement["Action"])) <= {
                "sagemaker:ListModels",
                "sagemaker:ListEndpointConfigs",
                "tag:GetResources",
            }


def test_tags_are_put_only_while_creating() -> None:
    """AddTags on an existing resource would let the role claim a foreign one and then delete it."""
    for statement in policy_statements():
        if "sagemaker:AddTags" in _listed(statement["Action"]):
            assert _listed(statement["Action"]) == ["sagemaker:AddTags"]
            assert sorted(statement["Condition"]["StringEquals"]["sagemaker:TaggingAction"]) == [
                "CreateEndpoint",
                "CreateEndpointConfig",
                "CreateModel",
            ]


def test_bucket_listing_always_needs_our_prefix() -> None:
    for statement in policy_statements():
        if "s3:ListBucket" in _listed(statement["Action"]):
            assert set(statement["Condition"]) == {"StringLike"}, "IfExists would allow listing the whole bucket"
            assert statement["Condition"]["StringLike"]["s3:prefix"] == "djl-operator/*"


def test_role_passing_and_kms_are_confined_to_their_services() -> None:
    by_sid = {s["Sid"]: s for s in policy_statements()}
    for statement in by_sid.values():
        actions = set(_listed(statement["Action"]))
        if "iam:PassRole" in actions:
            assert actions == {"iam:PassRole"}
            assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
        if any(a.startswith("kms:") for a in actions):
            assert all(a.startswith("kms:") for a in actions)
            assert statement["Condition"]["StringLike"]["kms:ViaService"] in (
                "s3.*.amazonaws.com",
                "sagemaker.*.amazonaws.com",
            )
        if any(a.startswith("s3:") for a in actions):
            assert all(r.startswith("arn:aws:s3:::ARTIFACT-BUCKET") for r in _listed(statement["Resource"]))


def _lifecycle(cluster: Cluster) -> set[tuple[str, str]]:
    """Create, change (new model and instance count: new artifact, rolling update), delete."""
    cluster.apply(endpoint_manifest("iam-probe"))
    cluster.wait_ready("iam-probe")
    cluster.apply(endpoint_manifest("iam-probe", model__id="sshleifer/tiny-random-t5", instance__count=2))
    status = cluster.wait_ready("iam-probe")
    assert status["endpointConfigName"] == status["desiredEndpointConfigName"]
    cluster.delete("iam-probe")
    assert cluster.endpoint_names() == []
    return {(c.service, c.operation) for c in cluster.emulator.calls() if c.principal == OPERATOR_ACCESS_KEY}


def test_policy_allows_exactly_what_the_operator_calls(cluster: Cluster) -> None:
    observed = _lifecycle(cluster) | OPERATOR_CALLS.operations()
    needed = set().union(*(iam_actions(service, operation) for service, operation in observed))
    granted = policy_actions()
    tests = sorted(OPERATOR_CALLS.tests())
    assert granted == needed, (
        f"missing from the policy: {sorted(needed - granted)}; never used: {sorted(granted - needed)}; "
        f"observed calls: {sorted(observed)} (from this lifecycle and {len(tests)} other tests)"
    )
