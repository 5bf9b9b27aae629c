"""spec.rollout: the pure mapping to UpdateEndpoint's DeploymentConfig, the progress read back, the planner."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from djl_operator import rollout
from djl_operator.api import DjlEndpointStatus, Phase, RolloutSpec
from djl_operator.planner import Action, Desired, Next, ObservedEndpoint, plan
from djl_operator_kit.emulator import rollout as emulated
from djl_operator_kit.emulator.validation import violations

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
ALARMS = {"AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "ep-5xx"}]}}


def _pct(value: int) -> dict[str, Any]:
    return {"Type": "CAPACITY_PERCENT", "Value": value}


# (spec.rollout, DeploymentConfig)
MAPPING: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = [
    (None, None),
    (
        {},
        {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}},
    ),
    (
        {"strategy": "Canary", "canaryPercent": 10, "waitIntervalSeconds": 300, "rollbackAlarms": ["ep-5xx"]},
        {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 300, "CanarySize": _pct(10)}
            },
            **ALARMS,
        },
    ),
    (
        {
            "strategy": "Linear",
            "linearStepPercent": 25,
            "waitIntervalSeconds": 60,
            "terminationWaitSeconds": 120,
            "maximumExecutionTimeoutSeconds": 1800,
        },
        {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "LINEAR",
                    "WaitIntervalInSeconds": 60,
                    "LinearStepSize": _pct(25),
                },
                "TerminationWaitInSeconds": 120,
                "MaximumExecutionTimeoutInSeconds": 1800,
            }
        },
    ),
    (
        {"strategy": "AllAtOnce", "waitIntervalSeconds": 30, "terminationWaitSeconds": 0, "rollbackAlarms": ["ep-5xx"]},
        {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 30},
                "TerminationWaitInSeconds": 0,
            },
            **ALARMS,
        },
    ),
    (
        {"strategy": "Rolling", "rollingBatchPercent": 20, "rollbackBatchPercent": 50, "waitIntervalSeconds": 60},
        {
            "RollingUpdatePolicy": {
                "MaximumBatchSize": _pct(20),
                "WaitIntervalInSeconds": 60,
                "RollbackMaximumBatchSize": _pct(50),
            }
        },
    ),
    (
        {"strategy": "Rolling", "rollingBatchPercent": 5, "maximumExecutionTimeoutSeconds": 600},
        {
            "RollingUpdatePolicy": {
                "MaximumBatchSize": _pct(5),
                "WaitIntervalInSeconds": 0,
                "MaximumExecutionTimeoutInSeconds": 600,
            }
        },
    ),
]


@pytest.mark.parametrize(("spec", "expected"), MAPPING)
def test_deployment_config(spec: dict[str, Any] | None, expected: dict[str, Any] | None) -> None:
    config = rollout.deployment_config(None if spec is None else RolloutSpec.model_validate(spec))
    assert config == expected
    if config is not None:
        # What botocore's model and the emulator (SageMaker's documented refusals) accept, for 1 and 20 instances.
        request = {"EndpointName": "ep", "EndpointConfigName": "c", "DeploymentConfig": config}
        assert violations("UpdateEndpoint", request) == []
        for count in (1, 20):
            emulated.check(config, [{"VariantName": "AllTraffic", "InitialInstanceCount": count}])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"canaryPercent": 10}, "canaryPercent is only valid with strategy Canary"),
        ({"strategy": "Linear", "linearStepPercent": 10, "rollbackBatchPercent": 5}, "rollbackBatchPercent is only"),
        ({"strategy": "Canary"}, "strategy Canary requires canaryPercent"),
        ({"strategy": "Linear"}, "strategy Linear requires linearStepPercent"),
        ({"strategy": "Rolling"}, "strategy Rolling requires rollingBatchPercent"),
        ({"strategy": "Rolling", "rollingBatchPercent": 10, "terminationWaitSeconds": 5}, "not Rolling"),
        ({"waitIntervalSeconds": 600, "maximumExecutionTimeoutSeconds": 600}, "must be larger than"),
        ({"strategy": "Canary", "canaryPercent": 51}, "less than or equal to 50"),
    ],
)
def test_refused_combinations(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RolloutSpec.model_validate(spec)


def _described(status: str, stage: str | None, message: str = "", start: float = 1_795_000_000.0) -> dict[str, Any]:
    pending: dict[str, Any] = {"EndpointConfigName": "demo-new", "ProductionVariants": [{"VariantName": "AllTraffic"}]}
    if stage is not None:
        pending["ProductionVariants"][0]["VariantStatus"] = [
            {"Status": stage, "StatusMessage": message, "StartTime": dt.datetime.fromtimestamp(start, dt.UTC)}
        ]
    return {"EndpointStatus": status, "EndpointConfigName": "demo-old", "PendingDeploymentSummary": pending}


START = dt.datetime.fromtimestamp(1_795_000_000.0, dt.UTC)
WAIT = "(WaitIntervalInSeconds)"


@pytest.mark.parametrize(
    ("described", "expected"),
    [
        ({"EndpointStatus": "InService"}, None),
        (_described("Updating", "Creating"), ("Creating", 0, None)),
        (
            _described("Updating", "Baking", f"Baking for 300 seconds {WAIT} with traffic enabled on 10% capacity"),
            ("Baking", 10, START + dt.timedelta(seconds=300)),
        ),
        (
            _described("Updating", "ActivatingTraffic", "Activating traffic on 100% capacity"),
            ("ActivatingTraffic", 100, None),
        ),
        (_described("Updating", "Baking", "Baking with traffic enabled on full capacity"), ("Baking", 100, None)),
        (
            _described("Updating", "Baking", "Waiting 60 seconds (TerminationWaitInSeconds) before terminating"),
            ("Baking", None, START + dt.timedelta(seconds=60)),
        ),
        (_described("RollingBack", "Deleting", "Rolling back: alarm"), ("Deleting", 0, None)),
        (_described("Updating", None), (None, None, None)),
    ],
)  # fmt: skip
def test_progress_from_describe_endpoint(described: dict[str, Any], expected: Any) -> None:
    found = rollout.progress(described)
    assert (found if found is None else (found.stage, found.percent, found.ends_at)) == expected


def test_progress_reads_the_emulators_messages() -> None:
    # The emulator's wording and the operator's parsing agree, for every phase it reports.
    plan_ = emulated.plan(
        {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "LINEAR",
                    "WaitIntervalInSeconds": 5,
                    "LinearStepSize": _pct(25),
                },
                "TerminationWaitInSeconds": 7,
            }
        },
        [{"VariantName": "AllTraffic", "InitialInstanceCount": 1}],
        0.0,
    )
    read = [rollout.progress(_described("Updating", p.status, p.message)) for p in plan_.phases]
    steps = [(p.status, int(p.percent)) for p in plan_.phases][:-1]
    assert [(r.stage, r.percent) for r in read if r] == [*steps, ("Baking", None)]
    assert [r.ends_at - START for r in read if r and r.ends_at] == [dt.timedelta(seconds=s) for s in [5] * 4 + [7]]


@pytest.mark.parametrize(
    ("reason", "alarms", "fired"),
    [
        ("rolled back because CloudWatch alarm(s) [ep-5xx] went into ALARM", ("ep-5xx", "ep-p99"), ["ep-5xx"]),
        ("model failed to start", ("ep-5xx",), []),
        (None, ("ep-5xx",), []),
    ],
)
def test_fired_alarms(reason: str | None, alarms: tuple[str, ...], fired: list[str]) -> None:
    assert rollout.fired_alarms(reason, alarms) == fired


DESIRED = Desired(
    endpoint_name="ns-demo",
    model_name="demo-aaaa",
    config_name="demo-new",
    region="us-east-1",
    rollout_strategy="Canary",
    rollback_alarms=("ep-5xx",),
)


def _observed(status: str, config: str = "demo-old", **fields: Any) -> ObservedEndpoint:
    return ObservedEndpoint(
        name="ns-demo", arn="arn:aws:sagemaker:us-east-1:123456789012:endpoint/ns-demo", status=status,
        config_name=config, **fields,
    )  # fmt: skip


def test_status_and_events_follow_the_rollout_stage_by_stage() -> None:
    previous = DjlEndpointStatus.model_validate({"phase": "Updating", "desiredEndpointConfigName": "demo-new"})
    baking = rollout.Progress("demo-new", "Baking", 10, START + dt.timedelta(seconds=300))
    result = plan(DESIRED, _observed("Updating", progress=baking), previous, now=NOW, capacity_backoff=600)
    assert result.next is Next.POLL and result.actions == [] and result.phase is Phase.UPDATING
    assert result.conditions["Reconciling"].status and result.conditions["Reconciling"].reason == "Updating"
    assert result.rollout == {
        "strategy": "Canary",
        "stage": "Baking",
        "trafficPercent": 10,
        "nextStepTime": "2026-11-18T11:11:40Z",
        "endpointConfigName": "demo-new",
        "summary": "Canary 10% Baking",
    }
    assert "10% of the traffic on it" in result.conditions["Ready"].message
    assert result.event is not None and result.event[1] == "RolloutProgress" and "Baking, 10%" in result.event[2]
    # The same stage again: no event; the next stage: one.
    same = DjlEndpointStatus.model_validate({**previous.model_dump(by_alias=True), "rollout": result.rollout})
    assert plan(DESIRED, _observed("Updating", progress=baking), same, now=NOW, capacity_backoff=600).event is None
    full = dataclasses.replace(baking, percent=100)
    moved = plan(DESIRED, _observed("Updating", progress=full), same, now=NOW, capacity_backoff=600)
    assert moved.event is not None and "100%" in moved.event[2] and moved.rollout is not None


def test_an_alarm_rollback_is_stalled_naming_the_alarm_and_collects_once() -> None:
    previous = DjlEndpointStatus.model_validate(
        {"phase": "Updating", "desiredEndpointConfigName": "demo-new", "rollout": {"stage": "Baking"}}
    )
    failure = emulated.alarm_reason(["ep-5xx"])
    result = plan(DESIRED, _observed("InService", failure_reason=failure), previous, now=NOW, capacity_backoff=600)
    assert result.actions == [Action.COLLECT_ROLLED_BACK] and result.next is Next.STALLED
    assert result.phase is Phase.ROLLED_BACK and result.serving_config == "demo-old" and result.rollout is None
    assert {c: (s.status, s.reason) for c, s in result.conditions.items()} == {
        "Ready": (False, "RolledBackByAlarm"),
        "Reconciling": (False, "RolledBackByAlarm"),
        "Stalled": (True, "RolledBackByAlarm"),
    }
    assert "rolled back by CloudWatch alarm ep-5xx" in result.conditions["Stalled"].message
    assert result.event is not None and result.event[:2] == ("Warning", "RolledBackByAlarm")
    seen = DjlEndpointStatus.model_validate({"phase": "RolledBack", "desiredEndpointConfigName": "demo-new"})
    again = plan(DESIRED, _observed("InService", failure_reason=failure), seen, now=NOW, capacity_backoff=600)
    assert again.actions == [] and again.event is None and again.next is Next.STALLED
