"""InvokeEndpoint runs the endpoint's real artifact through `djl-operator serve`."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from djl_operator.emulator import Emulator
from tests.plugins.emulator import config, echo_artifact, model, upload


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
