"""Deployment guardrails on a fake clock: the stages, the traffic split, alarm and timeout rollbacks."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from djl_operator_kit.emulator import rollout
from djl_operator_kit.emulator.cloudwatch import CloudWatch
from djl_operator_kit.emulator.errors import ApiError
from djl_operator_kit.emulator.faults import Delays, Faults
from djl_operator_kit.emulator.sagemaker import SageMaker

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"
ALARM = {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "errors"}]}}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cw(clock: Clock) -> CloudWatch:
    alarms = CloudWatch("us-east-1", "123456789012", clock)
    alarms.put_metric_alarm(
        {
            "AlarmName": "errors",
            "MetricName": "Invocation5XXErrors",
            "Namespace": "AWS/SageMaker",
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        }
    )
    return alarms


@pytest.fixture
def sm(clock: Clock, cw: CloudWatch) -> SageMaker:
    faults = Faults(Delays(create=10, update=20, delete=5, rollback=7))
    api = SageMaker("us-east-1", "123456789012", faults, lambda b, k, p: True, clock)
    api.alarm_states = cw.states
    for name in ("m1", "m2"):
        api.handle(
            "CreateModel", {"ModelName": name, "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": f"s3://b/{name}"}}
        )
    for name, model in (("c1", "m1"), ("c2", "m2")):
        variant = {"VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.g5.xlarge"}
        api.handle(
            "CreateEndpointConfig",
            {"EndpointConfigName": name, "ProductionVariants": [{**variant, "InitialInstanceCount": 4}]},
        )
    api.handle("CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c1"})
    clock.now += 10
    return api


def _blue_green(kind: str, wait: int = 30, termination: int = 0, **routing: Any) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": kind, "WaitIntervalInSeconds": wait, **routing},
            "TerminationWaitInSeconds": termination,
        },
        **ALARM,
    }


def _stage(sm: SageMaker) -> tuple[str, str | None, str | None]:
    ep = sm.handle("DescribeEndpoint", {"EndpointName": "ep"})
    pending = ep.get("PendingDeploymentSummary")
    status = pending["ProductionVariants"][0]["VariantStatus"][0] if pending else None
    return ep["EndpointStatus"], status["Status"] if status else None, status.get("StatusMessage") if status else None


def _models(sm: SageMaker, n: int) -> Counter[str]:
    answered: Counter[str] = Counter()
    for _ in range(n):
        target = sm.runtime_target("ep", None)
        assert target is not None
        answered[target.model_name] += 1
    return answered


def test_canary_provisions_then_bakes_the_canary_then_shifts_the_rest(sm: SageMaker, clock: Clock) -> None:
    canary = {"CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}
    sm.handle(
        "UpdateEndpoint",
        {"EndpointName": "ep", "EndpointConfigName": "c2", "DeploymentConfig": _blue_green("CANARY", 30, 15, **canary)},
    )
    assert _stage(sm) == ("Updating", "Creating", None)
    assert _models(sm, 20) == {"m1": 20}  # the new fleet is being provisioned
    clock.now += 20
    status, stage, message = _stage(sm)
    assert (status, stage) == ("Updating", "Baking")
    assert message == "Baking for 30 seconds (WaitIntervalInSeconds) with traffic enabled on 10% capacity"
    assert _models(sm, 400) == {"m1": 360, "m2": 40}
    ep = sm.handle("DescribeEndpoint", {"EndpointName": "ep"})
    assert ep["EndpointConfigName"] == "c1" and ep["PendingDeploymentSummary"]["EndpointConfigName"] == "c2"
    pending = ep["PendingDeploymentSummary"]["ProductionVariants"][0]
    assert pending["VariantStatus"][0]["StartTime"] == 1030.0 and pending["CurrentInstanceCount"] == 4
    assert ep["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"
    clock.now += 30
    assert _stage(sm)[:2] == ("Updating", "Baking")
    assert _models(sm, 10) == {"m2": 10}
    assert _stage(sm)[2] == "Baking for 30 seconds (WaitIntervalInSeconds) with traffic enabled on 100% capacity"
    clock.now += 30
    assert _stage(sm)[2] == "Waiting 15 seconds (TerminationWaitInSeconds) before terminating the old fleet"
    clock.now += 15
    ep = sm.handle("DescribeEndpoint", {"EndpointName": "ep"})
    assert (ep["EndpointStatus"], ep["EndpointConfigName"]) == ("InService", "c2")
    assert "PendingDeploymentSummary" not in ep and "FailureReason" not in ep
    assert ep["LastModifiedTime"] == 1105.0


def test_linear_steps_through_its_percentages(sm: SageMaker, clock: Clock) -> None:
    linear = {"LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 1}}  # 1 of 4 instances: 25 %
    sm.handle(
        "UpdateEndpoint",
        {"EndpointName": "ep", "EndpointConfigName": "c2", "DeploymentConfig": _blue_green("LINEAR", 10, **linear)},
    )
    clock.now += 20
    seen = []
    for _ in range(4):
        seen.append((_stage(sm)[2], _models(sm, 100)["m2"]))
        clock.now += 10
    assert seen == [
        (f"Baking for 10 seconds (WaitIntervalInSeconds) with traffic enabled on {p}% capacity", p)
        for p in (25, 50, 75, 100)
    ]
    assert _stage(sm)[:2] == ("InService", None)


def test_an_alarm_during_baking_rolls_back_to_the_old_fleet(sm: SageMaker, clock: Clock, cw: CloudWatch) -> None:
    canary = {"CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}
    sm.handle(
        "UpdateEndpoint",
        {"EndpointName": "ep", "EndpointConfigName": "c2", "DeploymentConfig": _blue_green("CANARY", 60, **canary)},
    )
    clock.now += 25
    assert _stage(sm)[1] == "Baking"
    cw.set_alarm_state({"AlarmName": "errors", "StateValue": "ALARM", "StateReason": "5xx"})
    clock.now += 3  # nobody looked in between: the rollback happened when the alarm fired
    ep = sm.handle("DescribeEndpoint", {"EndpointName": "ep"})
    assert ep["EndpointStatus"] == "RollingBack" and ep["LastModifiedTime"] == 1035.0
    assert ep["PendingDeploymentSummary"]["ProductionVariants"][0]["VariantStatus"][0]["Status"] == "Deleting"
    assert _models(sm, 30) == {"m1": 30}  # all traffic is back on the old fleet at once
    clock.now += 7
    ep = sm.handle("DescribeEndpoint", {"EndpointName": "ep"})
    assert (ep["EndpointStatus"], ep["EndpointConfigName"]) == ("InService", "c1")
    assert ep["FailureReason"] == rollout.alarm_reason(["errors"])
    assert "errors" in ep["FailureReason"] and "PendingDeploymentSummary" not in ep


def test_an_alarm_before_the_first_shift_does_not_count_until_traffic_moves(
    sm: SageMaker, clock: Clock, cw: CloudWatch
) -> None:
    # Monitoring starts with the first traffic shift: an alarm already firing then rolls back at that moment.
    cw.set_alarm_state({"AlarmName": "errors", "StateValue": "ALARM", "StateReason": "old"})
    sm.handle(
        "UpdateEndpoint",
        {"EndpointName": "ep", "EndpointConfigName": "c2", "DeploymentConfig": _blue_green("ALL_AT_ONCE", 5)},
    )
    clock.now += 19
    assert _stage(sm)[:2] == ("Updating", "Creating")
    clock.now += 1
    assert _stage(sm)[0] == "RollingBack"
    assert sm.handle("DescribeEndpoint", {"EndpointName": "ep"})["LastModifiedTime"] == 1030.0


def test_an_alarm_after_the_deployment_finished_changes_nothing(sm: SageMaker, clock: Clock, cw: CloudWatch) -> None:
    sm.handle(
        "UpdateEndpoint",
        {"EndpointName": "ep", "EndpointConfigName": "c2", "DeploymentConfig": _blue_green("ALL_AT_ONCE", 5)},
    )
    clock.now += 26  # done at 1035 (20 s provisioning, 5 s baking); nobody looked since
    cw.set_alarm_state({"AlarmName": "errors", "StateValue": "ALARM", "StateReason": "late"})
    clock.now += 1
    ep = sm.handle("DescribeEndpoint", {"EndpointName": "ep"})
    assert (ep["EndpointStatus"], ep["EndpointConfigName"]) == ("InService", "c2") and "FailureReason" not in ep


def test_the_execution_timeout_rolls_back_a_deployment_stuck_on_its_new_fleet(sm: SageMaker, clock: Clock) -> None:
    sm.deploy_hook = lambda endpoint, targets: lambda: False  # the new fleet never turns healthy
    policy = _blue_green("ALL_AT_ONCE", 0)
    policy["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] = 600
    sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c2", "DeploymentConfig": policy})
    clock.now += 599
    assert _stage(sm)[:2] == ("Updating", "Creating")
    clock.now += 1
    assert _stage(sm)[0] == "RollingBack"
    clock.now += 7
    ep = sm.handle("DescribeEndpoint", {"EndpointName": "ep"})
    assert (ep["EndpointStatus"], ep["EndpointConfigName"]) == ("InService", "c1")
    assert ep["FailureReason"] == rollout.timeout_reason(600)


def test_rolling_moves_batch_by_batch_and_rolls_back_in_rollback_batches(
    sm: SageMaker, clock: Clock, cw: CloudWatch
) -> None:
    policy = {
        "RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 2},
            "WaitIntervalInSeconds": 10,
            "RollbackMaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
        },
        **ALARM,
    }
    sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c2", "DeploymentConfig": policy})
    clock.now += 20
    ep = sm.handle("DescribeEndpoint", {"EndpointName": "ep"})
    pending = ep["PendingDeploymentSummary"]["ProductionVariants"][0]
    assert (pending["VariantStatus"][0]["Status"], pending["CurrentInstanceCount"]) == ("Baking", 2)
    assert _models(sm, 10) == {"m1": 5, "m2": 5}
    clock.now += 10
    assert _stage(sm)[:2] == ("Updating", "Creating")  # the next batch is provisioned (update delay)
    clock.now += 20
    assert _stage(sm)[2] == "Baking for 10 seconds (WaitIntervalInSeconds) with traffic enabled on 100% capacity"
    cw.set_alarm_state({"AlarmName": "errors", "StateValue": "ALARM", "StateReason": "5xx"})
    assert _stage(sm)[0] == "RollingBack"
    clock.now += 7 * 4 - 0.5  # four instances come back one at a time
    assert _stage(sm)[0] == "RollingBack"
    clock.now += 0.5
    assert _stage(sm)[0] == "InService"


def test_retain_deployment_config_reuses_the_last_one(sm: SageMaker, clock: Clock) -> None:
    canary = {"CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}}
    sm.handle(
        "UpdateEndpoint",
        {"EndpointName": "ep", "EndpointConfigName": "c2", "DeploymentConfig": _blue_green("CANARY", 10, **canary)},
    )
    clock.now += 40
    assert _stage(sm)[0] == "InService"
    sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c1", "RetainDeploymentConfig": True})
    clock.now += 20
    assert _stage(sm)[2] == "Baking for 10 seconds (WaitIntervalInSeconds) with traffic enabled on 50% capacity"


def test_no_deployment_config_switches_as_soon_as_the_new_fleet_is_up(sm: SageMaker, clock: Clock) -> None:
    sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c2"})
    clock.now += 20
    ep = sm.handle("DescribeEndpoint", {"EndpointName": "ep"})
    assert (ep["EndpointStatus"], ep["EndpointConfigName"], ep["LastModifiedTime"]) == ("InService", "c2", 1030.0)
    assert "LastDeploymentConfig" not in ep


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        (
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
                },
                "RollingUpdatePolicy": {
                    "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                    "WaitIntervalInSeconds": 0,
                },
            },
            "Only one of BlueGreenUpdatePolicy and RollingUpdatePolicy",
        ),
        (_blue_green("CANARY"), "CanarySize must be specified"),
        (_blue_green("LINEAR"), "LinearStepSize must be specified"),
        (_blue_green("ALL_AT_ONCE", CanarySize={"Type": "CAPACITY_PERCENT", "Value": 10}), "CanarySize can only"),
        (_blue_green("ALL_AT_ONCE", LinearStepSize={"Type": "INSTANCE_COUNT", "Value": 1}), "LinearStepSize can only"),
        (_blue_green("CANARY", CanarySize={"Type": "CAPACITY_PERCENT", "Value": 60}), "CanarySize 60"),
        (_blue_green("CANARY", CanarySize={"Type": "INSTANCE_COUNT", "Value": 3}), "CanarySize 3 (INSTANCE_COUNT)"),
        (_blue_green("LINEAR", LinearStepSize={"Type": "CAPACITY_PERCENT", "Value": 5}), "LinearStepSize 5"),
        (
            {
                "RollingUpdatePolicy": {
                    "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 80},
                    "WaitIntervalInSeconds": 0,
                }
            },
            "MaximumBatchSize 80",
        ),
        (
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600},
                    "TerminationWaitInSeconds": 100,
                    "MaximumExecutionTimeoutInSeconds": 700,
                }
            },
            "must be larger than the total waiting time",
        ),
    ],
)
def test_combinations_sagemaker_refuses_are_validation_errors(
    sm: SageMaker, deployment: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiError) as info:
        sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c2", "DeploymentConfig": deployment})
    assert info.value.code == "ValidationException" and message in info.value.message
    assert _stage(sm)[0] == "InService"  # nothing started


def test_rolling_is_refused_for_multi_variant_configs(sm: SageMaker) -> None:
    variants = [
        {"VariantName": v, "ModelName": "m2", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 2}
        for v in ("a", "b")
    ]
    sm.handle("CreateEndpointConfig", {"EndpointConfigName": "two", "ProductionVariants": variants})
    policy = {
        "RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 0}
    }
    with pytest.raises(ApiError, match="single instance-based production variant"):
        sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "two", "DeploymentConfig": policy})


def test_the_guardrail_time_scale_shortens_the_waits_not_what_describe_says(sm: SageMaker, clock: Clock) -> None:
    sm.faults.set(guardrail_time_scale=0.1)
    canary = {"CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}
    sm.handle(
        "UpdateEndpoint",
        {"EndpointName": "ep", "EndpointConfigName": "c2", "DeploymentConfig": _blue_green("CANARY", 30, 15, **canary)},
    )
    clock.now += 20  # provisioning is not a guardrail wait: not scaled
    assert _stage(sm)[2] == "Baking for 30 seconds (WaitIntervalInSeconds) with traffic enabled on 10% capacity"
    clock.now += 2.9
    assert _stage(sm)[2] == "Baking for 30 seconds (WaitIntervalInSeconds) with traffic enabled on 10% capacity"
    clock.now += 0.1
    assert _stage(sm)[2] == "Baking for 30 seconds (WaitIntervalInSeconds) with traffic enabled on 100% capacity"
    # A change applies to the wait under way, counted from its start: the 100% bake began at 23 s,
    # so at 0.5 it ends at 23 + 15 s instead of 26 s; the termination wait then takes 7.5 s.
    sm.faults.set(guardrail_time_scale=0.5)
    clock.now += 3
    assert _stage(sm)[2] == "Baking for 30 seconds (WaitIntervalInSeconds) with traffic enabled on 100% capacity"
    clock.now += 11.9
    assert _stage(sm)[2] == "Baking for 30 seconds (WaitIntervalInSeconds) with traffic enabled on 100% capacity"
    clock.now += 0.1
    assert _stage(sm)[2] == "Waiting 15 seconds (TerminationWaitInSeconds) before terminating the old fleet"
    clock.now += 7.4
    assert _stage(sm)[0] == "Updating"
    clock.now += 0.1
    ep = sm.handle("DescribeEndpoint", {"EndpointName": "ep"})
    assert (ep["EndpointStatus"], ep["EndpointConfigName"]) == ("InService", "c2")
    assert (
        ep["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["WaitIntervalInSeconds"]
        == 30
    )
    with pytest.raises(ValueError, match="guardrail_time_scale"):
        sm.faults.set(guardrail_time_scale=0)


def test_a_bake_under_way_ends_as_soon_as_a_smaller_scale_says_it_has_lasted(sm: SageMaker, clock: Clock) -> None:
    # How a test sizes a bake to what it measures: a long one, cut short once it has seen enough.
    canary = {"CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}
    sm.handle(
        "UpdateEndpoint",
        {"EndpointName": "ep", "EndpointConfigName": "c2", "DeploymentConfig": _blue_green("CANARY", 600, 0, **canary)},
    )
    clock.now += 20
    assert _stage(sm)[2] == "Baking for 600 seconds (WaitIntervalInSeconds) with traffic enabled on 10% capacity"
    clock.now += 30
    assert _stage(sm)[2] == "Baking for 600 seconds (WaitIntervalInSeconds) with traffic enabled on 10% capacity"

    # 24 s of wall time per bake: the 10% bake (from 20 s in) has lasted that, so it ends now (50 s in, when
    # the change is seen, not back at 44 s: it was seen baking until now); the 100% one runs until 74 s.
    sm.faults.set(guardrail_time_scale=0.04)

    ep = sm.handle("DescribeEndpoint", {"EndpointName": "ep"})
    [variant] = ep["PendingDeploymentSummary"]["ProductionVariants"]
    assert variant["VariantStatus"][0]["Status"] == "Baking"
    assert variant["VariantStatus"][0]["StartTime"] == 1060.0  # the update came at 1010
    assert _stage(sm)[2] == "Baking for 600 seconds (WaitIntervalInSeconds) with traffic enabled on 100% capacity"
    clock.now += 23.9
    assert _stage(sm)[2] == "Baking for 600 seconds (WaitIntervalInSeconds) with traffic enabled on 100% capacity"
    clock.now += 0.1
    ep = sm.handle("DescribeEndpoint", {"EndpointName": "ep"})
    assert (ep["EndpointStatus"], ep["EndpointConfigName"]) == ("InService", "c2")


def test_the_execution_timeout_is_scaled_too(sm: SageMaker, clock: Clock) -> None:
    sm.faults.set(guardrail_time_scale=0.01)
    sm.deploy_hook = lambda endpoint, targets: lambda: False  # the new fleet never turns healthy
    policy = _blue_green("ALL_AT_ONCE", 0)
    policy["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] = 600
    sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c2", "DeploymentConfig": policy})
    clock.now += 5.9
    assert _stage(sm)[:2] == ("Updating", "Creating")
    clock.now += 0.1
    assert _stage(sm)[0] == "RollingBack"
    clock.now += 7
    assert sm.handle("DescribeEndpoint", {"EndpointName": "ep"})["FailureReason"] == rollout.timeout_reason(600)
