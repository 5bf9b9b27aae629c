"""InvokeEndpoint runs the endpoint's real artifact through `djl-operator-kit serve`."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from djl_operator_kit.emulator import Emulator
from tests.plugins.emulator import config, echo_artifact, model, upload, wait_status
from tests.plugins.operator import wait_for


@pytest.fixture
def deployed(emulator: Emulator) -> Any:
    sm = emulator.client("sagemaker")
    url = upload(emulator.client("s3"), "models", "echo/model.tar.gz", echo_artifact())
    model(sm, "echo", url, env={"ECHO_PREFIX": "env:"})
    config(sm, "echo", "echo")
    sm.create_endpoint(EndpointName="echo", EndpointConfigName="echo")
    return emulator.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1}))


def test_invoke_runs_the_artifact(emulator: Emulator, deployed: Any) -> None:
    answer = deployed.invoke_endpoint(EndpointName="echo", Body=b"hello", ContentType="text/plain")
    assert answer["Body"].read() == b"env:text/plain|hello"
    assert answer["ContentType"] == "application/x-echo"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    again = deployed.invoke_endpoint(EndpointName="echo", Body=b"again", ContentType="text/plain")
    assert again["Body"].read() == b"env:text/plain|again"
    assert emulator.runtime.running() == 1  # one cached server per (endpoint, model data)
    calls = emulator.calls(service="sagemaker-runtime")
    assert [(c.operation, c.resource, c.error_code) for c in calls] == [("InvokeEndpoint", "echo", None)] * 2


def test_handler_errors_are_model_errors(deployed: Any) -> None:
    with pytest.raises(ClientError) as info:
        deployed.invoke_endpoint(EndpointName="echo", Body=b"fail", ContentType="text/plain")
    response = info.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == 400
    assert "asked to fail" in response["OriginalMessage"]
    assert response["Error"]["Message"].startswith("Received client error (400) from primary with message")


def test_endpoint_not_in_service_is_not_found(emulator: Emulator, deployed: Any) -> None:
    emulator.force_endpoint_failed("echo", "broken")
    for name in ("echo", "no-such-endpoint"):
        with pytest.raises(ClientError) as info:
            deployed.invoke_endpoint(EndpointName=name, Body=b"x")
        assert info.value.response["Error"]["Code"] == "ValidationError"
        assert info.value.response["Error"]["Message"] == f"Endpoint {name} of account {emulator.account_id} not found."


def test_the_old_fleet_answers_until_the_new_one_is_healthy(emulator: Emulator, deployed: Any) -> None:
    # Blue/green: during UpdateEndpoint the old model keeps answering at once, the update stays
    # Updating until the new model server answers /ping, and the first call after the switch
    # finds it warm instead of waiting for a cold start.
    sm = emulator.client("sagemaker")
    url = upload(emulator.client("s3"), "models", "echo/model.tar.gz", echo_artifact())
    # The new model takes 2 s to load, so the update is still waiting for it when "b" is sent.
    model(sm, "echo-v2", url, env={"ECHO_PREFIX": "v2:", "ECHO_LOAD_SECONDS": "2"})
    config(sm, "echo-v2", "echo-v2")
    assert deployed.invoke_endpoint(EndpointName="echo", Body=b"a")["Body"].read() == b"env:application/octet-stream|a"
    emulator.faults.set(update_delay=0.05)
    sm.update_endpoint(EndpointName="echo", EndpointConfigName="echo-v2")
    time.sleep(0.1)  # past the delay: only the new server's start holds the update now
    updating = sm.describe_endpoint(EndpointName="echo")
    assert updating["EndpointStatus"] == "Updating" and updating["EndpointConfigName"] == "echo"
    started = time.monotonic()
    answer = deployed.invoke_endpoint(EndpointName="echo", Body=b"b")["Body"].read()
    assert answer == b"env:application/octet-stream|b" and time.monotonic() - started < 1.0
    wait_status(sm, "echo", "InService", timeout=60)
    assert emulator.runtime.running() == 2  # the new fleet is up before the switch; the old one still runs
    started = time.monotonic()
    assert deployed.invoke_endpoint(EndpointName="echo", Body=b"c")["Body"].read() == b"v2:application/octet-stream|c"
    assert time.monotonic() - started < 1.0, "the first call after the switch waited for a cold start"
    assert emulator.runtime.running() == 1  # the old fleet is gone


def test_an_endpoint_nobody_invokes_updates_on_time(emulator: Emulator) -> None:
    # No model server runs for it, so nothing is warmed and the update takes just its delay
    # (its model data need not be a runnable artifact).
    sm = emulator.client("sagemaker")
    url = upload(emulator.client("s3"), "models", "not-a-model.tar.gz", b"not a tarball")
    model(sm, "m", url)
    config(sm, "c-1", "m")
    config(sm, "c-2", "m", count=2)
    sm.create_endpoint(EndpointName="quiet", EndpointConfigName="c-1")
    sm.update_endpoint(EndpointName="quiet", EndpointConfigName="c-2")
    assert sm.describe_endpoint(EndpointName="quiet")["EndpointConfigName"] == "c-2"
    assert emulator.runtime.running() == 0


def test_the_old_fleet_answers_its_calls_in_flight_before_it_stops(emulator: Emulator, tmp_path: Path) -> None:
    # After the switch the old fleet is terminated, not the requests it was answering.
    sm, gate = emulator.client("sagemaker"), tmp_path / "gate"
    runtime = emulator.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1}))
    url = upload(emulator.client("s3"), "models", "echo/model.tar.gz", echo_artifact())
    model(sm, "v1", url, env={"ECHO_PREFIX": "v1:", "ECHO_GATE": str(gate)})
    model(sm, "v2", url, env={"ECHO_PREFIX": "v2:"})
    config(sm, "v1", "v1")
    config(sm, "v2", "v2")
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="v1")
    wait_status(sm, "ep", "InService", timeout=30)
    assert runtime.invoke_endpoint(EndpointName="ep", Body=b"a")["Body"].read() == b"v1:application/octet-stream|a"
    held: dict[str, Any] = {}

    def call() -> None:
        try:
            held["body"] = runtime.invoke_endpoint(EndpointName="ep", Body=b"gate")["Body"].read()
        except ClientError as exc:
            held["error"] = exc.response["Error"]

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    wait_for(lambda: emulator.runtime.answering() == 1, timeout=10, what="the held call on the old fleet")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="v2")
    wait_status(sm, "ep", "InService", timeout=60)
    # The first settled call retires the old fleet, which still answers the held one.
    assert runtime.invoke_endpoint(EndpointName="ep", Body=b"c")["Body"].read() == b"v2:application/octet-stream|c"
    assert (emulator.runtime.running(), emulator.runtime.retiring()) == (1, 1) and caller.is_alive()
    gate.touch()
    caller.join(timeout=30)
    assert held == {"body": b"v1:application/octet-stream|gate"}
    wait_for(lambda: emulator.runtime.retiring() == 0, timeout=30, what="the old fleet stopped")
    assert emulator.runtime.answering() == 0
