"""Deployment guardrails in the emulator: real model servers answer from the fleet the traffic split picks."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from botocore.config import Config

from djl_operator_kit.emulator import Emulator
from tests.plugins.emulator import config, echo_artifact, error_alarm, model, upload, wait_status


@pytest.fixture
def fleets(emulator: Emulator) -> Any:
    """Endpoint "ep" serving v1 (answers "v1:..."), config "c2" ready with v2 (answers "v2:...")."""
    sm = emulator.client("sagemaker")
    url = upload(emulator.client("s3"), "models", "echo/model.tar.gz", echo_artifact())
    for version in ("v1", "v2"):
        model(sm, version, url, env={"ECHO_PREFIX": f"{version}:"})
    config(sm, "c1", "v1")
    config(sm, "c2", "v2")
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c1")
    error_alarm(emulator.client("cloudwatch"), "ep-errors")
    runtime = emulator.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1}))
    assert runtime.invoke_endpoint(EndpointName="ep", Body=b"x")["Body"].read().startswith(b"v1:")
    return sm, runtime


def _who(runtime: Any) -> str:
    return bytes(runtime.invoke_endpoint(EndpointName="ep", Body=b"x")["Body"].read()).split(b":")[0].decode()


def _stage(sm: Any) -> str | None:
    pending = sm.describe_endpoint(EndpointName="ep").get("PendingDeploymentSummary")
    return pending["ProductionVariants"][0]["VariantStatus"][0]["Status"] if pending else None


def _until(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _canary(wait: int) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": wait,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            }
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "ep-errors"}]},
    }


def test_a_canary_sends_its_share_to_the_new_fleet_then_all(emulator: Emulator, fleets: Any) -> None:
    sm, runtime = fleets
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="c2", DeploymentConfig=_canary(wait=30))
    # While the new fleet is provisioned, the old one answers everything.
    assert _stage(sm) == "Creating" and _who(runtime) == "v1"
    _until(lambda: _stage(sm) == "Baking")
    answered = Counter(_who(runtime) for _ in range(200))
    assert answered == {"v1": 180, "v2": 20}
    assert _stage(sm) == "Baking" and emulator.runtime.running() == 2  # both fleets serve
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"


def test_an_alarm_during_baking_rolls_back_and_the_new_fleet_goes(emulator: Emulator, fleets: Any) -> None:
    sm, runtime = fleets
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="c2", DeploymentConfig=_canary(wait=60))
    _until(lambda: _stage(sm) == "Baking")
    assert "v2" in Counter(_who(runtime) for _ in range(20))
    emulator.client("cloudwatch").set_alarm_state(AlarmName="ep-errors", StateValue="ALARM", StateReason="5xx")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "RollingBack"
    assert Counter(_who(runtime) for _ in range(20)) == {"v1": 20}  # traffic is back at once
    ep = wait_status(sm, "ep", "InService")
    assert ep["EndpointConfigName"] == "c1" and "ep-errors" in ep["FailureReason"]
    assert _who(runtime) == "v1"
    assert emulator.runtime.running() == 1  # the first settled call retired the new fleet


def test_a_linear_rollout_steps_and_finishes(emulator: Emulator, fleets: Any) -> None:
    sm, runtime = fleets
    sm.update_endpoint(
        EndpointName="ep",
        EndpointConfigName="c2",
        DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "LINEAR",
                    "WaitIntervalInSeconds": 1,
                    "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                }
            }
        },
    )
    messages: list[str] = []

    def step() -> bool:
        pending = sm.describe_endpoint(EndpointName="ep").get("PendingDeploymentSummary")
        if pending is None:
            return messages != []
        status = pending["ProductionVariants"][0]["VariantStatus"][0]
        if status["Status"] == "Baking" and status["StatusMessage"] not in messages:
            messages.append(status["StatusMessage"])
        return False

    _until(step)
    assert [m.rsplit(" on ", 1)[1] for m in messages] == ["50% capacity", "100% capacity"]
    assert sm.describe_endpoint(EndpointName="ep")["EndpointConfigName"] == "c2"
    assert _who(runtime) == "v2" and emulator.runtime.running() == 1
