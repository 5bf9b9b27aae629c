"""The operator's IAM policy allows exactly the AWS actions the operator uses, no wildcards.

"Uses" is measured, not listed by hand: the operator signs with its own access key id and the
emulator records who made every call. Two directions, neither depending on test order:
tests/plugins/aws_calls.py fails any test in which the operator made a call the policy does not
allow, and the lifecycle below (create, update, rename, a new bucket, delete) must use every
action the policy grants.
"""

from __future__ import annotations

import pytest

from djl_operator_kit.hub import Synthetic
from tests.plugins.events import route_endpoint_events
from tests.plugins.iam import iam_actions, listed, needed, policy_actions, policy_statements
from tests.plugins.operator import OPERATOR_ACCESS_KEY, Cluster, endpoint_manifest, wait_for


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
        (
            "application-autoscaling",
            "RegisterScalableTarget",
            {
                "application-autoscaling:RegisterScalableTarget",
                "iam:CreateServiceLinkedRole",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:UpdateEndpointWeightsAndCapacities",
            },
        ),
        ("application-autoscaling", "DescribeScalingActivities", {"application-autoscaling:DescribeScalingActivities"}),
        ("s3", "UploadPart", {"s3:PutObject", "kms:GenerateDataKey", "kms:Decrypt"}),
        ("s3", "AbortMultipartUpload", {"s3:AbortMultipartUpload"}),
        ("s3", "ListMultipartUploads", {"s3:ListBucketMultipartUploads"}),
        ("sqs", "DeleteMessageBatch", {"sqs:DeleteMessage"}),
        ("sqs", "ReceiveMessage", {"sqs:ReceiveMessage"}),
    ],
)
def test_api_calls_map_to_iam_actions(service: str, operation: str, actions: set[str]) -> None:
    assert iam_actions(service, operation) == actions


@pytest.mark.parametrize(
    ("service", "operation"), [("s3", "CreateBucket"), ("sts", "AssumeRole"), ("sqs", "SendMessage")]
)
def test_unmapped_calls_fail_loudly(service: str, operation: str) -> None:
    with pytest.raises(AssertionError, match=operation):
        iam_actions(service, operation)


def test_policy_has_no_wildcard_actions_or_denies() -> None:
    for statement in policy_statements():
        assert statement["Effect"] == "Allow", statement["Sid"]
        for action in listed(statement["Action"]):
            assert "*" not in action, f"{statement['Sid']}: wildcard action {action!r}"
            assert ":" in action, action


def test_unscoped_resources_only_where_iam_offers_no_scope() -> None:
    for statement in policy_statements():
        if "*" in listed(statement["Resource"]):
            assert set(listed(statement["Action"])) <= {
                "sagemaker:ListModels",
                "sagemaker:ListEndpointConfigs",
                "sagemaker:ListEndpoints",
                "tag:GetResources",
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingPolicies",
                "application-autoscaling:DescribeScheduledActions",
                "application-autoscaling:DescribeScalingActivities",
            }


def test_scalable_target_writes_only_for_sagemaker_variants() -> None:
    """scalable-target/* is every target in the account (ECS services, DynamoDB tables...): the
    Service Authorization Reference's condition keys narrow the writes to endpoint variants."""
    writes = {
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:DeregisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:PutScheduledAction",
        "application-autoscaling:DeleteScheduledAction",
    }
    granting = [s for s in policy_statements() if writes & set(listed(s["Action"]))]
    assert granting
    for statement in granting:
        assert statement["Condition"] == {
            "StringEquals": {
                "application-autoscaling:service-namespace": "sagemaker",
                "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
            }
        }, statement["Sid"]


def test_tags_are_put_only_while_creating() -> None:
    """AddTags on an existing resource would let the role claim a foreign one and then delete it."""
    for statement in policy_statements():
        if "sagemaker:AddTags" in listed(statement["Action"]):
            assert listed(statement["Action"]) == ["sagemaker:AddTags"]
            assert sorted(statement["Condition"]["StringEquals"]["sagemaker:TaggingAction"]) == [
                "CreateEndpoint",
                "CreateEndpointConfig",
                "CreateModel",
            ]


def test_service_linked_role_only_for_sagemaker_autoscaling() -> None:
    statements = [s for s in policy_statements() if "iam:CreateServiceLinkedRole" in listed(s["Action"])]
    assert len(statements) == 1
    (statement,) = statements
    assert listed(statement["Action"]) == ["iam:CreateServiceLinkedRole"]
    assert statement["Condition"] == {
        "StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}
    }
    assert listed(statement["Resource"]) == [
        "arn:aws:iam::111122223333:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
    ]


def test_bucket_listing_always_needs_our_prefix() -> None:
    for statement in policy_statements():
        if "s3:ListBucket" in listed(statement["Action"]):
            assert set(statement["Condition"]) == {"StringLike"}, "IfExists would allow listing the whole bucket"
            assert statement["Condition"]["StringLike"]["s3:prefix"] == "djl-operator/*"


def test_role_passing_and_kms_are_confined_to_their_services() -> None:
    by_sid = {s["Sid"]: s for s in policy_statements()}
    for statement in by_sid.values():
        actions = set(listed(statement["Action"]))
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
            assert all(r.startswith("arn:aws:s3:::ARTIFACT-BUCKET") for r in listed(statement["Resource"]))
        if "s3:ListBucketMultipartUploads" in actions:
            # Bucket-level: it lists upload keys only (the operator filters by its folder), never objects.
            assert actions == {"s3:ListBucketMultipartUploads"}


SECOND_BUCKET = "djl-test-artifacts-iam"


AUTOSCALING = {"maxInstances": 3, "invocationsPerInstance": 100}
NIGHTLY = {"name": "nightly", "schedule": "cron(0 22 ? * MON-FRI *)", "minInstances": 1, "maxInstances": 2}


def _lifecycle(cluster: Cluster) -> set[tuple[str, str]]:
    """Create with autoscaling and a schedule, change (new model and instance count, the schedule
    dropped), rename (the old endpoint's target deregistered), move to another bucket, delete; with
    endpoint events from a queue (as documented), so its actions are used too (polling stays at the
    test rate, so the steps wait as without a queue)."""
    cluster.operator.stop()
    cluster.operator.env["DJL_OPERATOR_EVENTS_QUEUE_URL"] = route_endpoint_events(cluster.emulator)
    cluster.operator.env["DJL_OPERATOR_EVENTS_POLL_SECONDS"] = cluster.operator.env["DJL_OPERATOR_POLL_SECONDS"]
    cluster.operator.env["DJL_OPERATOR_STATUS_READ_SECONDS"] = "1"  # the batched read (sagemaker:ListEndpoints)
    cluster.operator.start()
    cluster.s3.create_bucket(Bucket=SECOND_BUCKET)
    cluster.apply(endpoint_manifest("iam-probe", autoscaling={**AUTOSCALING, "schedules": [NIGHTLY]}))
    first = cluster.wait_ready("iam-probe")
    wait_for(lambda: (cluster.status("iam-probe").get("autoscaling") or {}).get("applied"), what="autoscaling")
    cluster.apply(
        endpoint_manifest("iam-probe", model__id="sshleifer/tiny-random-t5", instance__count=2, autoscaling=AUTOSCALING)
    )
    status = cluster.wait_ready("iam-probe")
    assert status["endpointConfigName"] == status["desiredEndpointConfigName"]
    autoscaling = cluster.emulator.client("application-autoscaling")
    wait_for(
        lambda: not autoscaling.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"],
        what="the dropped schedule deleted",
    )
    cluster.apply(endpoint_manifest("iam-probe", model__id="sshleifer/tiny-random-t5", instance__count=2,
                                    endpointName="iam-probe-renamed", aws__artifactBucket=SECOND_BUCKET,
                                    autoscaling=AUTOSCALING))  # fmt: skip
    cluster.wait_ready("iam-probe")
    wait_for(lambda: cluster.endpoint(first["endpointName"]) is None, timeout=30, what="the old endpoint deleted")
    cluster.delete("iam-probe")
    assert cluster.endpoint_names() == []
    _snapshot_cut_short(cluster)
    return {(c.service, c.operation) for c in cluster.emulator.calls() if c.principal == OPERATOR_ACCESS_KEY}


def _snapshot_cut_short(cluster: Cluster) -> None:
    """A snapshot whose copy a new revision cuts short (its upload aborted), then one that completes."""
    assert cluster.hub is not None
    cluster.hub.add_repo("iam/probe")
    files = {"config.json": b"{}", "model.safetensors": Synthetic(6 * 2**20)}  # two parts
    first = cluster.hub.commit("iam/probe", files, tags=("v1",))
    cluster.hub.commit("iam/probe", {**files, "README.md": b"v2"}, tags=("v2",))
    release = cluster.hub.hold("model.safetensors")
    snapshot = {"id": "iam/probe", "revision": "v1", "snapshot": True}
    cluster.apply(endpoint_manifest("iam-snap", model=snapshot))
    wait_for(lambda: cluster.emulator.calls(operation="CreateMultipartUpload"), timeout=60, what="an upload begun")
    cluster.apply(endpoint_manifest("iam-snap", model={**snapshot, "revision": "v2"}))
    wait_for(lambda: "stopping the copy" in cluster.condition("iam-snap", "Reconciling").get("message", ""),
             timeout=30, what="the first copy asked to stop")  # fmt: skip
    release.set()
    status = cluster.wait_ready("iam-snap", timeout=90)
    assert status["snapshot"]["commit"] != first
    assert [c.ok for c in cluster.emulator.calls(operation="AbortMultipartUpload")] == [True]
    cluster.delete("iam-snap")


def test_policy_allows_exactly_what_the_operator_calls(cluster: Cluster) -> None:
    observed = _lifecycle(cluster)
    granted = policy_actions()
    assert granted == needed(observed), (
        f"missing from the policy: {sorted(needed(observed) - granted)}; "
        f"never used: {sorted(granted - needed(observed))}; observed calls: {sorted(observed)}"
    )
