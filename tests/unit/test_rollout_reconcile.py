"""An alarm rollback through reconcile() against the emulator, in process: the rolled-back model, config and
artifact are collected once, and again on the next look when the first attempt failed."""

from __future__ import annotations

from typing import Any

import pytest

from djl_operator import api
from djl_operator.reconcile import Context, Next, reconcile
from djl_operator_kit.emulator import Emulator
from tests.plugins.operator import BUCKET, endpoint_manifest

UID = "6e2d3c4b-1a0f-4e9d-c8b7-a29384756657"
ALARM = "bart-5xx"
ROLLOUT = {"strategy": "Canary", "canaryPercent": 10, "waitIntervalSeconds": 600, "rollbackAlarms": [ALARM]}


@pytest.fixture
def ctx(reconcile_ctx: Context, emulator: Emulator) -> Context:
    emulator.client("cloudwatch").put_metric_alarm(
        AlarmName=ALARM, MetricName="Invocation5XXErrors", Namespace="AWS/SageMaker", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    return reconcile_ctx


class Resource:
    """One DjlEndpoint whose status carries over from reconcile to reconcile, as the API server keeps it."""

    def __init__(self, **spec: Any) -> None:
        self.generation, self.status, self.spec = 0, {}, spec
        self.edit(**spec)

    def edit(self, **spec: Any) -> None:
        self.spec, self.generation = {**self.spec, **spec}, self.generation + 1

    def reconcile(self, ctx: Context) -> Any:
        body = endpoint_manifest("bart", rollout=ROLLOUT, **self.spec)
        body["metadata"].update(namespace="team", uid=UID, generation=self.generation)
        body["status"] = self.status
        outcome = reconcile(api.DjlEndpointResource.from_body(body), ctx)
        self.status = {k: v for k, v in {**self.status, **outcome.status}.items() if v is not None}
        return outcome


def _owned(emulator: Emulator) -> tuple[list[str], list[str], list[str]]:
    sm, s3 = emulator.client("sagemaker"), emulator.client("s3")
    models = sorted(m["ModelName"] for m in sm.list_models(MaxResults=100)["Models"])
    configs = sorted(c["EndpointConfigName"] for c in sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"])
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    return models, configs, keys


def test_an_alarm_rollback_collects_the_rolled_back_version_even_after_a_failed_attempt(
    emulator: Emulator, ctx: Context
) -> None:
    bart = Resource(model__properties={"option.pooling": "mean"})
    bart.reconcile(ctx)  # creates
    assert bart.reconcile(ctx).next is Next.DONE  # InService (the emulator's delays are 0)
    serving = _owned(emulator)
    live_config = bart.status["endpointConfigName"]

    bart.edit(model__properties={"option.pooling": "cls"})
    bart.reconcile(ctx)  # UpdateEndpoint with the canary: the new fleet bakes 10 %
    [update] = emulator.calls(service="sagemaker", operation="UpdateEndpoint")
    assert update.ok
    baking = bart.reconcile(ctx)
    assert baking.status["rollout"]["summary"] == "Canary 10% Baking"
    assert len(_owned(emulator)[0]) == 2

    emulator.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="5xx")
    rolling_back = bart.reconcile(ctx)  # the look that finds SageMaker rolling back
    assert rolling_back.next is Next.POLL and rolling_back.status["endpointStatus"] == "RollingBack"
    emulator.faults.deny("DeleteModel")  # the first collection fails half-way
    failed = bart.reconcile(ctx)
    assert failed.next is Next.RETRY and "DeleteModel" in failed.message
    assert failed.status["phase"] == "Updating"  # not yet "seen": the next look collects again
    emulator.faults.clear()
    stalled = bart.reconcile(ctx)
    assert stalled.next is Next.STALLED
    assert {c["type"]: c["reason"] for c in stalled.status["conditions"]}["Stalled"] == "RolledBackByAlarm"
    assert stalled.status["phase"] == "RolledBack" and stalled.status["endpointConfigName"] == live_config
    assert _owned(emulator) == serving  # only what serves is left
    # Seen: the next look (a restart, say) collects nothing and calls nothing but DescribeEndpoint.
    emulator.reset_calls()
    again = bart.reconcile(ctx)
    assert again.next is Next.STALLED and again.events == []
    assert {c.operation for c in emulator.calls(service="sagemaker")} <= {"DescribeEndpoint", "DescribeEndpointConfig"}
