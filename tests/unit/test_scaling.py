"""Autoscaling decisions (djl_operator.scaling, the planner's variant update and deletion order), table-tested,
and the Application Auto Scaling adapter against the emulator."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from djl_operator import naming, scaling
from djl_operator.api import DjlEndpointSpec, DjlEndpointStatus, Phase
from djl_operator.autoscaling_adapter import AutoScalingAdapter, activity_status
from djl_operator.errors import SpecError
from djl_operator.planner import Action, Desired, Next, ObservedEndpoint, plan, plan_delete, plan_variant_update
from djl_operator.scaling import ObservedScaling, ScalingAction, ScheduledAction
from djl_operator_kit.emulator import Emulator
from tests.plugins.emulator import IMAGE, ROLE, upload

UID = "0b1c2d3e-aaaa-bbbb-cccc-000000000001"
A = ScalingAction


def _spec(**autoscaling: Any) -> DjlEndpointSpec:
    body: dict[str, Any] = {
        "model": {"id": "facebook/bart-large"},
        "instance": {"type": "ml.g5.2xlarge", "count": 1},
        "aws": {"executionRoleArn": ROLE, "artifactBucket": "bucket"},
    }
    if autoscaling:
        body["autoscaling"] = {"maxInstances": 4, "invocationsPerInstance": 100, **autoscaling}
    return DjlEndpointSpec.model_validate(body)


NIGHT = {"name": "night", "schedule": "cron(0 22 ? * * *)", "minInstances": 1, "maxInstances": 1}
BURST = {"name": "burst", "schedule": "at(2030-01-01T08:00:00)", "minInstances": 3}
DESIRED = scaling.desired_scaling(_spec(schedules=[NIGHT, BURST]), "ns-demo", UID)
assert DESIRED is not None
PREFIX = scaling.name_prefix(UID)
POLICY = DESIRED.policy_config()
ACTIONS = {a.name: a for a in DESIRED.actions}


def _observed(lo: int = 1, hi: int = 4, **overrides: Any) -> ObservedScaling:
    fields: dict[str, Any] = {"min": lo, "max": hi, "policies": {DESIRED.policy_name: POLICY}, "actions": ACTIONS}
    return ObservedScaling(**{**fields, **overrides})


def test_desired_scaling_names_carry_the_owner_and_reads_the_spec() -> None:
    assert DESIRED.resource_id == "endpoint/ns-demo/variant/AllTraffic"
    assert DESIRED.policy_name == f"djl-operator-{naming.owner_id(UID)}-target-tracking"
    assert [a.name for a in DESIRED.actions] == [PREFIX + "schedule-night", PREFIX + "schedule-burst"]
    assert DESIRED.actions[1] == ScheduledAction(PREFIX + "schedule-burst", "at(2030-01-01T08:00:00)", 3, None)
    assert POLICY == {
        "TargetValue": 100.0,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 300,
        "DisableScaleIn": False,
    }
    concurrency = scaling.desired_scaling(_spec(invocationsPerInstance=None, concurrentRequestsPerModel=4), "e", UID)
    assert concurrency is not None and concurrency.metric == scaling.CONCURRENCY and concurrency.target == 4.0
    assert scaling.desired_scaling(_spec(), "e", UID) is None
    # Another owner, another name; the same spec, the same digest.
    other = scaling.desired_scaling(_spec(schedules=[NIGHT, BURST]), "ns-demo", "another-uid")
    assert other is not None and other.policy_name != DESIRED.policy_name and other.digest == DESIRED.digest


PLANS = [
    # (id, desired, observed, applied, actions, put, delete, event reason)
    ("nothing to do", None, None, None, [], (), (), None),
    ("removed from the spec", None, _observed(), DESIRED.digest, [A.DEREGISTER], (), (), "AutoscalingRemoved"),
    ("first registration", DESIRED, None, None, [A.REGISTER, A.PUT_POLICY, A.PUT_SCHEDULED_ACTIONS],
     DESIRED.actions, (), "AutoscalingConfigured"),
    ("deregistered out of band", DESIRED, None, DESIRED.digest, [A.REGISTER, A.PUT_POLICY, A.PUT_SCHEDULED_ACTIONS],
     DESIRED.actions, (), "AutoscalingConfigured"),
    ("in line", DESIRED, _observed(), DESIRED.digest, [], (), (), None),
    ("bounds a schedule set (night)", DESIRED, _observed(1, 1), DESIRED.digest, [], (), (), None),
    ("bounds a schedule set (burst: min only)", DESIRED, _observed(3, 4), DESIRED.digest, [], (), (), None),
    ("a min a schedule set, with a max neither the spec nor a schedule sets", DESIRED, _observed(3, 100),
     DESIRED.digest, [A.REGISTER], (), (), "AutoscalingDriftRepaired"),
    ("bounds changed out of band", DESIRED, _observed(2, 5), DESIRED.digest, [A.REGISTER], (), (),
     "AutoscalingDriftRepaired"),
    ("schedule bounds, but the spec changed", DESIRED, _observed(1, 1), "older", [A.REGISTER], (), (),
     "AutoscalingConfigured"),
    ("policy target changed out of band", DESIRED,
     _observed(policies={DESIRED.policy_name: {**POLICY, "TargetValue": 5.0}}), DESIRED.digest, [A.PUT_POLICY], (), (),
     "AutoscalingDriftRepaired"),
    ("policy deleted out of band; someone else's policy left alone", DESIRED,
     _observed(policies={"someone-elses": POLICY}), DESIRED.digest, [A.PUT_POLICY], (), (), "AutoscalingDriftRepaired"),
    ("a schedule changed, ours extra, someone else's left alone", DESIRED,
     _observed(actions={
         PREFIX + "schedule-night": ScheduledAction(PREFIX + "schedule-night", "cron(0 23 ? * * *)", 1, 1),
         PREFIX + "schedule-burst": ACTIONS[PREFIX + "schedule-burst"],
         PREFIX + "schedule-gone": ScheduledAction(PREFIX + "schedule-gone", "rate(1 day)", 1, 1),
         "someone-elses": ScheduledAction("someone-elses", "rate(1 day)", 1, 1),
     }), DESIRED.digest, [A.PUT_SCHEDULED_ACTIONS, A.DELETE_SCHEDULED_ACTIONS],
     (ACTIONS[PREFIX + "schedule-night"],), (PREFIX + "schedule-gone",), "AutoscalingDriftRepaired"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("desired", "observed", "applied", "actions", "put", "delete", "reason"),
    [pytest.param(*row[1:], id=row[0]) for row in PLANS],
)
def test_plan_scaling(desired, observed, applied, actions, put, delete, reason) -> None:  # type: ignore[no-untyped-def]
    result = scaling.plan_scaling(desired, observed, applied)
    assert result.actions == actions
    assert result.put_actions == put
    assert result.delete_actions == delete
    assert (result.event[1] if result.event else None) == reason
    assert result.applied == (desired.digest if desired else None)


@pytest.mark.parametrize(
    ("previous", "observed", "cause", "expected"),
    [
        (None, 3, None, None),
        (3, None, None, None),
        (2, 2, "x", None),
        (
            1,
            3,
            "monitor alarm AlarmHigh",
            ("Normal", "ScaledOut", "desired instances 1 -> 3 (monitor alarm AlarmHigh)"),
        ),
        (3, 1, None, ("Normal", "ScaledIn", "desired instances 3 -> 1")),
    ],
)
def test_scaling_event_on_transitions_only(
    previous: int | None, observed: int | None, cause: str | None, expected: tuple[str, str, str] | None
) -> None:
    assert scaling.scaling_event(previous, observed, cause) == expected


def test_a_time_that_does_not_exist_is_an_invalid_spec() -> None:
    scaling.check(_spec(schedules=[BURST]))
    with pytest.raises(SpecError) as caught:
        scaling.check(_spec(schedules=[NIGHT, {**BURST, "schedule": "at(2027-02-29T08:00:00)"}]))
    assert caught.value.field == "spec.autoscaling.schedules[1].schedule"


def test_a_time_zone_that_is_not_an_iana_name_is_an_invalid_spec() -> None:
    scaling.check(_spec(schedules=[{**NIGHT, "timezone": "Europe/Berlin"}, {**BURST, "timezone": "Etc/GMT+9"}]))
    with pytest.raises(SpecError) as caught:
        scaling.check(_spec(schedules=[NIGHT, {**BURST, "timezone": "Europe/Berln"}]))  # the pattern allows it
    assert caught.value.field == "spec.autoscaling.schedules[1].timezone"
    assert "Europe/Berln" in caught.value.message


@pytest.mark.parametrize(
    ("live_type", "live_count", "reset", "deregister"),
    [
        (None, None, False, False),  # the live config is gone: keep what runs
        ("ml.g5.2xlarge", 2, False, False),  # only the model changed: the autoscaled count stays
        ("ml.g5.2xlarge", 1, True, False),  # spec.instance.count changed: the count resets
        ("ml.g5.xlarge", 2, False, True),  # a new instance type: deregistered first (AWS refuses otherwise)
    ],
)
def test_plan_variant_update(live_type: str | None, live_count: int | None, reset: bool, deregister: bool) -> None:
    update = plan_variant_update(live_type, live_count, "ml.g5.2xlarge", 2)
    assert (update.reset_count, update.deregister_first) == (reset, deregister)


def _endpoint(status: str, name: str = "ns-demo", config: str = "demo-new", **counts: int) -> ObservedEndpoint:
    return ObservedEndpoint(name, f"arn:aws:sagemaker:us-east-1:1:endpoint/{name}", status, config, **counts)


def test_scaling_on_the_specs_config_stays_ready() -> None:
    desired = Desired("ns-demo", "demo-m", "demo-new", "us-east-1")
    previous = DjlEndpointStatus(phase=Phase.IN_SERVICE, endpoint_config_name="demo-new")
    now = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    scaling_now = plan(desired, _endpoint("Updating", current_instances=1, desired_instances=3), previous, now=now,
                       capacity_backoff=600)  # fmt: skip
    assert (scaling_now.phase, scaling_now.ready, scaling_now.next, scaling_now.actions) == (
        Phase.IN_SERVICE, True, Next.POLL, []
    )  # fmt: skip
    assert scaling_now.conditions["Ready"].status and not scaling_now.conditions["Reconciling"].status
    assert scaling_now.event is None  # no InService event again for a scale-out
    # A blue/green update (another config still serving) is progress, as before.
    updating = plan(desired, _endpoint("Updating", config="demo-old"), previous, now=now, capacity_backoff=600)
    assert (updating.phase, updating.ready) == (Phase.UPDATING, False)


def test_the_finalizer_deregisters_every_owned_endpoint_busy_or_not() -> None:
    busy = plan_delete((_endpoint("Updating"),), retain=False)
    assert (busy.actions, busy.deregister) == ([], ("ns-demo",))
    both = plan_delete((_endpoint("InService"), _endpoint("Updating", name="old")), retain=False)
    assert (both.actions, both.delete_endpoints, both.deregister) == ([Action.DELETE_ENDPOINT], ("ns-demo",),
                                                                      ("ns-demo", "old"))  # fmt: skip
    assert plan_delete((_endpoint("InService"),), retain=True).deregister == ()


def test_adapter_find_create_update_delete(emulator: Emulator) -> None:
    sm = emulator.client("sagemaker")
    url = upload(emulator.client("s3"), "scaling-bucket", "m.tar.gz")
    sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE, "ModelDataUrl": url})
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "InstanceType": "ml.g5.2xlarge",
        "InitialInstanceCount": 1,
    }
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName="ns-demo", EndpointConfigName="c")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ns-demo", WaiterConfig={"Delay": 0.1})
    client = emulator.client("application-autoscaling")
    adapter = AutoScalingAdapter(client)

    assert adapter.find(DESIRED.resource_id) is None
    adapter.register(DESIRED)
    adapter.put_policy(DESIRED)
    for action in DESIRED.actions:
        adapter.put_scheduled_action(DESIRED.resource_id, action)
    found = adapter.find(DESIRED.resource_id)
    assert found is not None
    assert scaling.plan_scaling(DESIRED, found, DESIRED.digest).actions == []  # what was put reads back as equal
    assert (found.min, found.max) == (1, 4)
    assert found.last_activity is None

    adapter.delete_scheduled_action(DESIRED.resource_id, PREFIX + "schedule-night")
    adapter.delete_scheduled_action(DESIRED.resource_id, PREFIX + "schedule-night")  # not found: done
    found = adapter.find(DESIRED.resource_id)
    assert found is not None and list(found.actions) == [PREFIX + "schedule-burst"]

    emulator.set_invocation_rate("ns-demo", "AllTraffic", 250)
    found = adapter.find(DESIRED.resource_id)
    assert found is not None and found.last_activity is not None
    reported = activity_status(found.last_activity)
    assert reported is not None and reported["description"] == "Setting desired instance count to 3."
    assert reported["startTime"].endswith("Z")

    adapter.deregister(DESIRED.resource_id)
    adapter.deregister(DESIRED.resource_id)  # not found: done
    assert adapter.find(DESIRED.resource_id) is None
    assert client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
