"""`djl-operator-kit emulator` as a subprocess, driven through the admin HTTP API."""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from djl_operator_kit.emulator.client import AdminError, EmulatorProcess
from tests.plugins.emulator import IMAGE, config, model, upload


def test_subprocess_emulator_and_admin_api(emulator_process: EmulatorProcess) -> None:
    env = emulator_process.env
    assert env["AWS_ENDPOINT_URL_SAGEMAKER"].startswith("http://127.0.0.1:")
    assert env["AWS_ENDPOINT_URL_S3"] != env["AWS_ENDPOINT_URL_SAGEMAKER"]
    sm = emulator_process.client("sagemaker", config=Config(retries={"total_max_attempts": 1}))
    model(sm, "m", upload(emulator_process.client("s3"), "models", "m.tar.gz"))
    config(sm, "c", "m")
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointArn"].endswith(":123456789012:endpoint/ep")

    emulator_process.force_endpoint_failed("ep", "forced")
    assert sm.describe_endpoint(EndpointName="ep")["FailureReason"] == "forced"
    emulator_process.faults.deny("CreateModel")
    with pytest.raises(ClientError) as info:
        sm.create_model(ModelName="m2", PrimaryContainer={"Image": IMAGE})
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"
    assert emulator_process.faults.snapshot()["deny"] == ["CreateModel"]
    emulator_process.faults.clear()

    ops = [c.operation for c in emulator_process.calls()]
    assert ops[:2] == ["CreateBucket", "PutObject"] and "CreateEndpoint" in ops
    assert [c.error_code for c in emulator_process.calls(operation="CreateModel")] == [None, "AccessDeniedException"]
    emulator_process.reset_calls()
    assert emulator_process.calls() == []

    with pytest.raises(AdminError, match="throttle needs exactly one of rate"):
        emulator_process.faults.throttle()
    with pytest.raises(AdminError, match="Could not find endpoint"):
        emulator_process.force_endpoint_failed("nope", "x")
    emulator_process.reset()
    assert sm.list_endpoints()["Endpoints"] == []


def test_bad_arguments_exit_with_a_message() -> None:
    with pytest.raises(AdminError, match="account_id must be 12 digits"):
        EmulatorProcess.spawn("--account-id", "12")
