"""Application Auto Scaling's target tracking on a fake clock: bounds, cooldowns, Updating, activities."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from djl_operator_kit.emulator.autoscaling import DIMENSION, AutoScaling, valid_schedule
from djl_operator_kit.emulator.errors import ApiError
from djl_operator_kit.emulator.faults import Delays, Faults
from djl_operator_kit.emulator.sagemaker import SageMaker

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"
RID = "endpoint/ep/variant/AllTraffic"
KEY = {"ServiceNamespace": "sagemaker", "ResourceId": RID, "ScalableDimension": DIMENSION}
UPDATE = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _world(clock: Clock, count: int = 1) -> tuple[SageMaker, AutoScaling]:
    sm = SageMaker("us-east-1", "123456789012", Faults(Delays(update=UPDATE)), lambda b, k, p: True, clock)
    sm.handle("CreateModel", {"ModelName": "m", "PrimaryContainer": {"Image": IMAGE}})
    sm.handle(
        "CreateEndpointConfig",
        {
            "EndpointConfigName": "c",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m",
                    "InstanceType": "ml.g5.xlarge",
                    "InitialInstanceCount": count,
                }
            ],
        },
    )
    sm.handle("CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c"})
    return sm, AutoScaling(sm, clock)


def _policy(aas: AutoScaling, target: float = 100.0, **extra: Any) -> dict[str, Any]:
    return aas.handle(
        "PutScalingPolicy",
        {
            **KEY,
            "PolicyName": "invocations",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": target,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                **extra,
            },
        },
    )


def _counts(sm: SageMaker) -> tuple[str, int, int]:
    state = sm.variant_state("ep", "AllTraffic")
    assert state is not None
    return state


def test_load_scales_out_through_updating_within_max_after_the_cooldown() -> None:
    clock = Clock()
    sm, aas = _world(clock)
    aas.handle("RegisterScalableTarget", {**KEY, "MinCapacity": 1, "MaxCapacity": 4})
    _policy(aas, ScaleOutCooldown=60, ScaleInCooldown=120)
    aas.set_invocation_rate("ep", "AllTraffic", 250)  # ceil(250 / 100) = 3
    assert _counts(sm) == ("Updating", 3, 1)
    clock.now += UPDATE
    assert _counts(sm) == ("InService", 3, 3)
    aas.tick()
    activities = aas.handle("DescribeScalingActivities", {"ServiceNamespace": "sagemaker"})["ScalingActivities"]
    assert [a["StatusCode"] for a in activities] == ["Successful"]
    assert "3" in activities[0]["Description"]

    aas.set_invocation_rate("ep", "AllTraffic", 10_000)  # wants 100: capped at max, but cooling down
    assert _counts(sm) == ("InService", 3, 3)
    clock.now += 50  # 60 s after the first scale-out
    aas.tick()
    assert _counts(sm) == ("Updating", 4, 3)
    clock.now += UPDATE
    assert _counts(sm) == ("InService", 4, 4)


def test_scale_in_waits_for_its_cooldown_stops_at_min_and_respects_disable_scale_in() -> None:
    clock = Clock()
    sm, aas = _world(clock, count=4)
    aas.handle("RegisterScalableTarget", {**KEY, "MinCapacity": 2, "MaxCapacity": 4})
    _policy(aas, ScaleInCooldown=120)
    aas.set_invocation_rate("ep", "AllTraffic", 0)
    assert _counts(sm) == ("Updating", 2, 4)  # no earlier scale-in: scales in at once, to min
    clock.now += UPDATE
    aas.set_invocation_rate("ep", "AllTraffic", 350)
    assert _counts(sm) == ("Updating", 4, 2)  # scale-out does not wait for the scale-in cooldown
    clock.now += UPDATE
    aas.set_invocation_rate("ep", "AllTraffic", 150)
    assert _counts(sm) == ("InService", 4, 4)  # 20 s after the scale-in: still cooling down
    clock.now += 100  # 120 s after it
    aas.tick()
    assert _counts(sm)[1] == 2

    clock.now += 1_000
    _policy(aas, DisableScaleIn=True)
    aas.set_invocation_rate("ep", "AllTraffic", 450)
    clock.now += UPDATE
    aas.tick()
    assert _counts(sm) == ("InService", 4, 4)
    aas.set_invocation_rate("ep", "AllTraffic", 0)
    clock.now += 10_000
    aas.tick()
    assert _counts(sm) == ("InService", 4, 4)


def test_registering_moves_capacity_into_the_new_bounds_and_suspension_stops_scale_out() -> None:
    clock = Clock()
    sm, aas = _world(clock, count=1)
    aas.handle("RegisterScalableTarget", {**KEY, "MinCapacity": 2, "MaxCapacity": 3})
    assert _counts(sm) == ("Updating", 2, 1)
    clock.now += UPDATE
    aas.handle("RegisterScalableTarget", {**KEY, "SuspendedState": {"DynamicScalingOutSuspended": True}})
    _policy(aas)
    aas.set_invocation_rate("ep", "AllTraffic", 1_000)
    assert _counts(sm) == ("InService", 2, 2)
    target = aas.handle("DescribeScalableTargets", {"ServiceNamespace": "sagemaker"})["ScalableTargets"][0]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 3)  # unspecified members unchanged
    assert target["SuspendedState"]["DynamicScalingOutSuspended"] is True


def test_a_deleted_endpoint_takes_its_target_policies_and_actions_with_it() -> None:
    clock = Clock()
    sm, aas = _world(clock)
    aas.handle("RegisterScalableTarget", {**KEY, "MinCapacity": 1, "MaxCapacity": 2})
    _policy(aas)
    aas.handle("PutScheduledAction", {**KEY, "ScheduledActionName": "night", "Schedule": "cron(0 22 * * ? *)"})
    sm.handle("DeleteEndpoint", {"EndpointName": "ep"})
    for op, member in (
        ("DescribeScalableTargets", "ScalableTargets"),
        ("DescribeScalingPolicies", "ScalingPolicies"),
        ("DescribeScheduledActions", "ScheduledActions"),
    ):
        assert aas.handle(op, {"ServiceNamespace": "sagemaker"})[member] == []


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [
        ("at(2026-12-01T08:00:00)", True),
        ("rate(1 hour)", True),
        ("rate(5 minutes)", True),
        ("cron(0 22 ? * MON-FRI *)", True),
        ("cron(15 10 1 * ? 2027)", True),
        ("rate(0 minutes)", False),
        ("rate(-1 days)", False),
        ("rate(2 weeks)", False),
        ("at(2026-12-01 08:00:00)", False),
        ("at(2026-13-45T08:00:00)", False),
        ("cron(0 22 * * *)", False),  # five fields: Unix cron, not AWS's
        ("cron(0 22 1 * MON *)", False),  # one of day-of-month / day-of-week must be '?'
        ("every day", False),
    ],
)
def test_schedule_expressions(schedule: str, ok: bool) -> None:
    assert valid_schedule(schedule) is ok


def test_unknown_objects_are_object_not_found() -> None:
    clock = Clock()
    _, aas = _world(clock)
    with pytest.raises(ApiError) as err:
        aas.handle("DeregisterScalableTarget", KEY)
    assert err.value.code == "ObjectNotFoundException"
    assert RID in err.value.message
    aas.handle("RegisterScalableTarget", {**KEY, "MinCapacity": 1, "MaxCapacity": 2})
    with pytest.raises(ApiError) as err:
        aas.handle("DeleteScalingPolicy", {**KEY, "PolicyName": "nope"})
    assert err.value.code == "ObjectNotFoundException"
    with pytest.raises(ApiError) as err:
        aas.handle("DeleteScheduledAction", {**KEY, "ScheduledActionName": "nope"})
    assert err.value.code == "ObjectNotFoundException"


def _at(seconds_from_epoch: float) -> str:
    return "at(" + datetime.datetime.fromtimestamp(seconds_from_epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S") + ")"


def _target(aas: AutoScaling) -> dict[str, Any]:
    targets = aas.handle("DescribeScalableTargets", {"ServiceNamespace": "sagemaker"})["ScalableTargets"]
    assert len(targets) == 1
    return dict(targets[0])


def test_an_at_action_runs_once_at_its_time_and_moves_capacity_into_its_bounds() -> None:
    clock = Clock()
    sm, aas = _world(clock)
    aas.handle("RegisterScalableTarget", {**KEY, "MinCapacity": 1, "MaxCapacity": 2})
    action = {**KEY, "ScheduledActionName": "peak", "Schedule": _at(1_060)}
    aas.handle("PutScheduledAction", {**action, "ScalableTargetAction": {"MinCapacity": 3, "MaxCapacity": 5}})
    clock.now = 1_059
    aas.tick()
    assert (_target(aas)["MinCapacity"], _counts(sm)) == (1, ("InService", 1, 1))
    clock.now = 1_060
    aas.tick()
    assert (_target(aas)["MinCapacity"], _target(aas)["MaxCapacity"]) == (3, 5)
    assert _counts(sm) == ("Updating", 3, 1)
    clock.now += UPDATE
    # Put back by hand: the action does not run again.
    aas.handle("RegisterScalableTarget", {**KEY, "MinCapacity": 1, "MaxCapacity": 2})
    clock.now += 1_000
    aas.tick()
    assert (_target(aas)["MinCapacity"], _target(aas)["MaxCapacity"]) == (1, 2)
    assert _counts(sm)[1] == 2  # register moved 3 into [1, 2]


def test_a_rate_action_repeats_within_its_window_unless_suspended_and_cron_is_not_applied() -> None:
    clock = Clock()
    _, aas = _world(clock)
    aas.handle("RegisterScalableTarget", {**KEY, "MinCapacity": 1, "MaxCapacity": 4})
    aas.handle(
        "PutScheduledAction",
        {
            **KEY,
            "ScheduledActionName": "nightly",
            "Schedule": "cron(0 0 * * ? *)",
            "ScalableTargetAction": {"MaxCapacity": 1},
        },
    )
    aas.handle(
        "PutScheduledAction",
        {
            **KEY,
            "ScheduledActionName": "every-minute",
            "Schedule": "rate(1 minute)",
            "EndTime": 1_200,
            "ScalableTargetAction": {"MinCapacity": 2},
        },
    )
    clock.now = 1_059
    aas.tick()
    assert _target(aas)["MinCapacity"] == 1
    clock.now = 1_060
    aas.tick()
    assert (_target(aas)["MinCapacity"], _target(aas)["MaxCapacity"]) == (2, 4)  # cron left MaxCapacity alone
    aas.handle(
        "RegisterScalableTarget", {**KEY, "MinCapacity": 1, "SuspendedState": {"ScheduledScalingSuspended": True}}
    )
    clock.now = 1_130
    aas.tick()
    assert _target(aas)["MinCapacity"] == 1  # suspended
    aas.handle("RegisterScalableTarget", {**KEY, "SuspendedState": {"ScheduledScalingSuspended": False}})
    aas.tick()
    assert _target(aas)["MinCapacity"] == 2  # the 1 120 run, once resumed
    aas.handle("RegisterScalableTarget", {**KEY, "MinCapacity": 1})
    clock.now = 1_250
    aas.tick()
    assert _target(aas)["MinCapacity"] == 1  # past EndTime


def test_an_update_that_changes_a_scalable_variants_instance_type_fails_until_deregistered() -> None:
    clock = Clock()
    sm, aas = _world(clock)
    sm.scalable_variants = aas.scalable_variants  # as the Emulator wires them
    variant = {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1}
    sm.handle("CreateEndpointConfig", {"EndpointConfigName": "bigger", "ProductionVariants": [
        {**variant, "InstanceType": "ml.g5.2xlarge"}]})  # fmt: skip
    sm.handle("CreateEndpointConfig", {"EndpointConfigName": "same-type", "ProductionVariants": [
        {**variant, "InstanceType": "ml.g5.xlarge", "InitialVariantWeight": 0.5}]})  # fmt: skip
    aas.handle("RegisterScalableTarget", {**KEY, "MinCapacity": 1, "MaxCapacity": 4})
    with pytest.raises(ApiError) as refused:
        sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "bigger"})
    assert refused.value.code == "ValidationException" and "scalable target" in refused.value.message
    assert _counts(sm)[0] == "InService"
    # The same instance type (a new model, say) is allowed while registered.
    sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "same-type"})
    clock.now += UPDATE
    assert _counts(sm)[0] == "InService"
    aas.handle("DeregisterScalableTarget", KEY)
    sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "bigger"})
    assert _counts(sm)[0] == "Updating"


def test_a_time_zone_that_is_not_an_iana_name_is_a_validation_exception() -> None:
    clock = Clock()
    _, aas = _world(clock)
    aas.handle("RegisterScalableTarget", {**KEY, "MinCapacity": 1, "MaxCapacity": 2})
    action = {
        **KEY,
        "ScheduledActionName": "a",
        "Schedule": "cron(0 8 ? * * *)",
        "ScalableTargetAction": {"MinCapacity": 2},
    }
    aas.handle("PutScheduledAction", {**action, "Timezone": "Europe/Berlin"})
    with pytest.raises(ApiError) as err:
        aas.handle("PutScheduledAction", {**action, "ScheduledActionName": "b", "Timezone": "Europe/Berln"})
    assert err.value.code == "ValidationException" and "Europe/Berln" in err.value.message
    names = [a["ScheduledActionName"] for a in aas.handle("DescribeScheduledActions", KEY)["ScheduledActions"]]
    assert names == ["a"]


def test_a_refused_scheduled_action_update_changes_nothing() -> None:
    clock = Clock()
    _, aas = _world(clock)
    aas.handle("RegisterScalableTarget", {**KEY, "MinCapacity": 1, "MaxCapacity": 4})
    action = {**KEY, "ScheduledActionName": "a", "Schedule": "cron(0 8 ? * * *)"}
    aas.handle("PutScheduledAction", {**action, "ScalableTargetAction": {"MinCapacity": 2, "MaxCapacity": 3}})
    with pytest.raises(ApiError) as err:
        aas.handle(
            "PutScheduledAction",
            {**action, "Schedule": "rate(1 day)", "ScalableTargetAction": {"MinCapacity": 3, "MaxCapacity": 2}},
        )
    assert err.value.code == "ValidationException"
    (stored,) = aas.handle("DescribeScheduledActions", KEY)["ScheduledActions"]
    assert stored["Schedule"] == "cron(0 8 ? * * *)"
    assert stored["ScalableTargetAction"] == {"MinCapacity": 2, "MaxCapacity": 3}
