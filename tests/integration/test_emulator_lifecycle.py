"""Endpoint lifecycles over the wire: time-driven, rollbacks, failures, out-of-band drift."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from djl_operator_kit.emulator import CAPACITY_REASON, Emulator
from tests.plugins.emulator import config, model, upload, wait_status

DELAY = 0.15


@pytest.fixture
def slow(make_emulator: Any) -> Emulator:
    return make_emulator(create_delay=DELAY, update_delay=DELAY, delete_delay=DELAY, rollback_delay=DELAY)


@pytest.fixture
def sm(slow: Emulator) -> Any:
    sm = slow.client("sagemaker")
    s3 = slow.client("s3")
    model(sm, "m-1", upload(s3, "models", "m-1/model.tar.gz"))
    model(sm, "m-2", upload(s3, "models", "m-2/model.tar.gz"))
    config(sm, "c-1", "m-1", count=2)
    config(sm, "c-2", "m-2", count=1)
    return sm


def _code_message(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_create_goes_creating_then_in_service(sm: Any) -> None:
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-1")
    creating = sm.describe_endpoint(EndpointName="ep")
    assert creating["EndpointStatus"] == "Creating"
    assert creating["PendingDeploymentSummary"]["EndpointConfigName"] == "c-1"
    done = wait_status(sm, "ep", "InService")
    assert done["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert done["LastModifiedTime"] > creating["CreationTime"]


def test_update_with_retained_instance_count(sm: Any) -> None:
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-1")
    wait_status(sm, "ep", "InService")
    # What autoscaling does: scale out beyond the config's initial count.
    sm.update_endpoint_weights_and_capacities(
        EndpointName="ep", DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 4}]
    )
    assert wait_status(sm, "ep", "InService")["ProductionVariants"][0]["CurrentInstanceCount"] == 4
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="c-2", RetainAllVariantProperties=True)
    updating = sm.describe_endpoint(EndpointName="ep")
    assert (updating["EndpointStatus"], updating["EndpointConfigName"]) == ("Updating", "c-1")
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == "c-2"
    done = wait_status(sm, "ep", "InService")
    assert done["EndpointConfigName"] == "c-2"
    assert done["ProductionVariants"][0]["CurrentInstanceCount"] == 4  # retained, not c-2's 1


def test_update_without_retain_resets_to_config(sm: Any) -> None:
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-1")
    wait_status(sm, "ep", "InService")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="c-2")
    done = wait_status(sm, "ep", "InService")
    assert done["ProductionVariants"][0]["CurrentInstanceCount"] == 1


def test_failed_update_rolls_back(slow: Emulator, sm: Any) -> None:
    slow.faults.fail_model_start(model_name="m-2")
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-1")
    wait_status(sm, "ep", "InService")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="c-2")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Updating"
    wait_status(sm, "ep", "RollingBack")
    done = wait_status(sm, "ep", "InService")
    assert done["EndpointConfigName"] == "c-1"
    assert "did not pass the ping health check" in done["FailureReason"]


def test_missing_model_data_fails_the_create(slow: Emulator, sm: Any) -> None:
    model(sm, "m-gone", "s3://models/nothing-here/model.tar.gz")
    config(sm, "c-gone", "m-gone")
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-gone")
    failed = wait_status(sm, "ep", "Failed")
    assert failed["FailureReason"].startswith("Failed to download model data(bucket: models, key: nothing-here/")


def test_capacity_error(slow: Emulator, sm: Any) -> None:
    slow.faults.capacity_error(instance_type="ml.g5.12xlarge")
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-1")
    assert wait_status(sm, "ep", "Failed")["FailureReason"] == CAPACITY_REASON
    assert CAPACITY_REASON.startswith("CapacityError:")


def test_delete_while_creating_is_refused_like_aws(sm: Any) -> None:
    arn = sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-1")["EndpointArn"]
    with pytest.raises(ClientError) as info:
        sm.delete_endpoint(EndpointName="ep")
    assert _code_message(info) == ("ValidationException", f'Cannot update in-progress endpoint "{arn}".')
    wait_status(sm, "ep", "InService")
    sm.delete_endpoint(EndpointName="ep")
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "Deleting"
    with pytest.raises(ClientError) as info:
        sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-1")
    assert _code_message(info)[1].startswith("Cannot create already existing endpoint")


def test_update_while_updating_is_refused(sm: Any) -> None:
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-1")
    with pytest.raises(ClientError) as info:
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="c-2")
    assert _code_message(info)[1].startswith("Cannot update in-progress endpoint")


def test_forced_failure_and_out_of_band_update(slow: Emulator, sm: Any) -> None:
    slow.faults.set(create_delay=0, update_delay=0)
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-1")
    sm.update_endpoint(EndpointName="ep", EndpointConfigName="c-2")  # drift, as a person with boto3 would
    assert sm.describe_endpoint(EndpointName="ep")["EndpointConfigName"] == "c-2"
    slow.force_endpoint_failed("ep", "InternalServerError: instance retired")
    failed = sm.describe_endpoint(EndpointName="ep")
    assert (failed["EndpointStatus"], failed["FailureReason"]) == ("Failed", "InternalServerError: instance retired")
    with pytest.raises(ClientError) as info:
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="c-1")
    assert _code_message(info)[1].startswith("Cannot update failed endpoint")
