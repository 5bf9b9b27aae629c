"""Application Auto Scaling for SageMaker variants through stock boto3, as the API reference documents it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from djl_operator_kit.emulator import Emulator
from djl_operator_kit.emulator.client import AdminError, EmulatorProcess
from tests.plugins.emulator import config, model, upload, wait_status

DIMENSION = "sagemaker:variant:DesiredInstanceCount"
NO_RETRY = Config(retries={"total_max_attempts": 1})


def _key(endpoint: str = "ep") -> dict[str, str]:
    return {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{endpoint}/variant/AllTraffic",
        "ScalableDimension": DIMENSION,
    }


def _endpoint(emu: Any, name: str = "ep", count: int = 1) -> Any:
    sm = emu.client("sagemaker")
    s3 = emu.client("s3")
    url = upload(s3, f"bucket-{name}", "model.tar.gz")
    model(sm, f"m-{name}", url)
    config(sm, f"c-{name}", f"m-{name}", count=count)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"c-{name}")
    wait_status(sm, name, "InService")
    return sm


@pytest.fixture
def aas(emulator: Emulator) -> Any:
    # What the operator will do: a stock client with an explicit endpoint, no retries.
    client = boto3.client(
        "application-autoscaling",
        region_name=emulator.region,
        endpoint_url=emulator.env["AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=NO_RETRY,
    )
    yield client
    client.close()


def _track(aas: Any, target: float = 100.0, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = aas.put_scaling_policy(
        **_key(),
        PolicyName="invocations",
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": target,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            **extra,
        },
    )
    return result


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_lifecycle_register_update_policy_schedule_deregister(emulator: Emulator, aas: Any) -> None:
    _endpoint(emulator)
    arn = aas.register_scalable_target(**_key(), MinCapacity=1, MaxCapacity=3)["ScalableTargetARN"]
    assert arn.startswith(f"arn:aws:application-autoscaling:{emulator.region}:{emulator.account_id}:scalable-target/")
    # Re-registering updates in place: same ARN, only the given member changes.
    assert aas.register_scalable_target(**_key(), MaxCapacity=5)["ScalableTargetARN"] == arn
    (target,) = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"], target["ScalableTargetARN"]) == (1, 5, arn)
    assert target["RoleARN"].endswith("/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")

    put = _track(aas, ScaleOutCooldown=30)
    assert [a["AlarmName"].rsplit("-", 5)[0] for a in put["Alarms"]] == [
        "TargetTracking-endpoint/ep/variant/AllTraffic-AlarmHigh",
        "TargetTracking-endpoint/ep/variant/AllTraffic-AlarmLow",
    ]
    assert _track(aas, target=80.0)["PolicyARN"] == put["PolicyARN"]  # a put with the same name updates
    # An update may leave PolicyType out (it is required only to create): the type is kept.
    aas.put_scaling_policy(
        **_key(),
        PolicyName="invocations",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 50.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        },
    )
    (policy,) = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=_key()["ResourceId"])[
        "ScalingPolicies"
    ]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 50.0
    assert policy["TargetTrackingScalingPolicyConfiguration"]["ScaleInCooldown"] == 300  # the default

    aas.put_scheduled_action(
        **_key(),
        ScheduledActionName="nights",
        Schedule="cron(0 22 ? * MON-FRI *)",
        ScalableTargetAction={"MinCapacity": 1, "MaxCapacity": 1},
    )
    (action,) = aas.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"]
    assert action["Schedule"] == "cron(0 22 ? * MON-FRI *)"
    assert action["ScalableTargetAction"] == {"MinCapacity": 1, "MaxCapacity": 1}

    aas.deregister_scalable_target(**_key())
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert aas.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"] == []
    calls = [c.operation for c in emulator.calls(service="application-autoscaling")]
    assert calls[0] == "RegisterScalableTarget" and calls[-1] == "DescribeScheduledActions"
    assert all(c.principal == "testing" for c in emulator.calls(service="application-autoscaling"))


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        ({"ResourceId": "endpoint/missing/variant/AllTraffic"}, "ValidationException", "does not exist"),
        ({"ResourceId": "endpoint/ep/variant/Other"}, "ValidationException", "does not exist"),
        ({"ResourceId": "ep"}, "ValidationException", "endpoint/<endpoint>/variant/<variant>"),
        ({"ScalableDimension": "sagemaker:variant:DesiredProvisionedConcurrency"}, "ValidationException", "dimension"),
        ({"ServiceNamespace": "ecs"}, "ValidationException", "namespace"),
        ({"MinCapacity": 4, "MaxCapacity": 2}, "ValidationException", "cannot be less than"),
        ({"MinCapacity": 0}, "ValidationException", "at least 1"),
        ({"MaxCapacity": None}, "ValidationException", "required"),
        # botocore does not check enums client-side: the refusal is the emulator's model validation.
        ({"ServiceNamespace": "nope"}, "ValidationException", "enum value set"),
    ],
)
def test_register_refusals(emulator: Emulator, aas: Any, change: dict[str, Any], code: str, words: str) -> None:
    _endpoint(emulator)
    request = {**_key(), "MinCapacity": 1, "MaxCapacity": 2, **change}
    request = {k: v for k, v in request.items() if v is not None}
    with pytest.raises(ClientError) as exc:
        aas.register_scalable_target(**request)
    assert _code(exc) == code
    assert words in exc.value.response["Error"]["Message"]
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []


def test_policy_and_schedule_refusals(emulator: Emulator, aas: Any) -> None:
    _endpoint(emulator)
    with pytest.raises(ClientError) as exc:
        _track(aas)
    assert _code(exc) == "ObjectNotFoundException"
    assert "No scalable target registered" in exc.value.response["Error"]["Message"]
    aas.register_scalable_target(**_key(), MinCapacity=1, MaxCapacity=2)
    with pytest.raises(ClientError) as exc:
        aas.put_scaling_policy(
            **_key(),
            PolicyName="cpu",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 50.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
            },
        )
    assert _code(exc) == "ValidationException"
    assert "ECSServiceAverageCPUUtilization" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        aas.put_scaling_policy(**_key(), PolicyName="p", PolicyType="PredictiveScaling")
    assert _code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        aas.put_scaling_policy(**_key(), PolicyName="p")  # no PolicyType for a new policy
    assert _code(exc) == "ValidationException"
    for bad in ("cron(0 22 * * *)", "rate(2 weeks)", "at(tomorrow)"):
        with pytest.raises(ClientError) as exc:
            aas.put_scheduled_action(**_key(), ScheduledActionName="s", Schedule=bad)
        assert _code(exc) == "ValidationException", bad
    with pytest.raises(ClientError) as exc:
        aas.delete_scaling_policy(**_key(), PolicyName="cpu")
    assert _code(exc) == "ObjectNotFoundException"
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    assert aas.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"] == []


def test_pagination(emulator: Emulator, aas: Any) -> None:
    names = [f"ep{i}" for i in range(3)]
    for name in names:
        _endpoint(emulator, name)
        aas.register_scalable_target(**_key(name), MinCapacity=1, MaxCapacity=2)
    first = aas.describe_scalable_targets(ServiceNamespace="sagemaker", MaxResults=2)
    assert len(first["ScalableTargets"]) == 2 and first["NextToken"]
    second = aas.describe_scalable_targets(ServiceNamespace="sagemaker", MaxResults=2, NextToken=first["NextToken"])
    assert len(second["ScalableTargets"]) == 1 and "NextToken" not in second
    paged = [
        t["ResourceId"]
        for page in aas.get_paginator("describe_scalable_targets").paginate(
            ServiceNamespace="sagemaker", PaginationConfig={"PageSize": 1}
        )
        for t in page["ScalableTargets"]
    ]
    assert paged == [f"endpoint/{n}/variant/AllTraffic" for n in names]
    only = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[_key("ep1")["ResourceId"]])
    assert [t["ResourceId"] for t in only["ScalableTargets"]] == ["endpoint/ep1/variant/AllTraffic"]


def test_faults_reach_it_in_its_own_codes(emulator: Emulator, aas: Any) -> None:
    emulator.faults.throttle(every=1, operations=["DescribeScalableTargets"])
    with pytest.raises(ClientError) as exc:
        aas.describe_scalable_targets(ServiceNamespace="sagemaker")
    assert _code(exc) == "ThrottlingException"
    emulator.faults.clear()
    emulator.faults.deny("RegisterScalableTarget")
    with pytest.raises(ClientError) as exc:
        aas.register_scalable_target(**_key(), MinCapacity=1, MaxCapacity=2)
    assert _code(exc) == "AccessDeniedException"
    assert "application-autoscaling:RegisterScalableTarget" in exc.value.response["Error"]["Message"]
    emulator.faults.internal_error("DescribeScalingPolicies")
    with pytest.raises(ClientError) as exc:
        aas.describe_scaling_policies(ServiceNamespace="sagemaker")
    assert _code(exc) == "InternalServiceException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    errors = [c.error_code for c in emulator.calls(service="application-autoscaling")]
    assert errors == ["ThrottlingException", "AccessDeniedException", "InternalServiceException"]


def test_simulated_load_scales_out_and_in_within_bounds(emulator: Emulator, aas: Any) -> None:
    sm = _endpoint(emulator)
    aas.register_scalable_target(**_key(), MinCapacity=1, MaxCapacity=3)
    _track(aas, target=100.0, ScaleOutCooldown=0, ScaleInCooldown=0)
    emulator.set_invocation_rate("ep", "AllTraffic", 1_000)  # wants 10, max is 3
    described = wait_status(sm, "ep", "InService")
    variant = described["ProductionVariants"][0]
    assert (variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]) == (3, 3)
    emulator.set_invocation_rate("ep", "AllTraffic", 0)
    described = wait_status(sm, "ep", "InService")
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=_key()["ResourceId"])
    assert [a["Description"] for a in activities["ScalingActivities"]] == [
        "Setting desired instance count to 1.",
        "Setting desired instance count to 3.",
    ]
    assert {a["StatusCode"] for a in activities["ScalingActivities"]} == {"Successful"}
    # Application Auto Scaling scales with its own service-linked role: none of it is the caller's call.
    assert [
        c.operation for c in emulator.calls(service="sagemaker", operation="UpdateEndpointWeightsAndCapacities")
    ] == []


def test_delete_endpoint_deregisters_its_target(emulator: Emulator, aas: Any) -> None:
    sm = _endpoint(emulator)
    aas.register_scalable_target(**_key(), MinCapacity=1, MaxCapacity=2)
    _track(aas)
    sm.delete_endpoint(EndpointName="ep")
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    with pytest.raises(ClientError) as exc:
        aas.deregister_scalable_target(**_key())
    assert _code(exc) == "ObjectNotFoundException"


def test_the_admin_rate_works_across_processes(emulator_process: EmulatorProcess) -> None:
    sm = _endpoint(emulator_process)
    aas = emulator_process.client("application-autoscaling")
    aas.register_scalable_target(**_key(), MinCapacity=1, MaxCapacity=4)
    _track(aas, target=10.0, ScaleOutCooldown=0)
    emulator_process.set_invocation_rate("ep", "AllTraffic", 25)
    described = wait_status(sm, "ep", "InService")
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 3
    for bad in ({"endpoint": "ep", "per_minute": 5}, {"endpoint": "ep", "variant": "AllTraffic", "per_minute": -1}):
        with pytest.raises(AdminError, match="HTTP 400"):
            emulator_process.request("POST", "/autoscaling/invocation_rate", bad)
    emulator_process.reset()
    assert aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
