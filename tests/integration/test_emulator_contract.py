"""Every emulated SageMaker operation through a stock boto3 client: happy paths, AWS's errors, validation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

from djl_operator_kit.emulator import Emulator
from tests.plugins.emulator import IMAGE, config, model, upload


@pytest.fixture
def sm(emulator: Emulator) -> Any:
    return emulator.client("sagemaker")


@pytest.fixture
def world(emulator: Emulator, sm: Any) -> str:
    data = upload(emulator.client("s3"), "models", "m-1/model.tar.gz")
    model(sm, "m-1", data)
    config(sm, "c-1", "m-1")
    return data


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


def _arn(emulator: Emulator, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:us-east-1:{emulator.account_id}:{kind}/{name}"


def test_models(emulator: Emulator, sm: Any) -> None:
    created = sm.create_model(
        ModelName="Model-A",
        PrimaryContainer={"Image": IMAGE, "Environment": {"K": "V"}},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
    )
    assert created["ModelArn"] == _arn(emulator, "model", "model-a")
    described = sm.describe_model(ModelName="Model-A")
    assert described["ModelName"] == "Model-A" and described["PrimaryContainer"]["Environment"] == {"K": "V"}
    assert isinstance(described["CreationTime"], datetime)
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["Model-A"]
    with pytest.raises(ClientError) as info:
        sm.create_model(ModelName="Model-A", PrimaryContainer={"Image": IMAGE})
    assert _error(info) == ("ValidationException", f'Cannot create already existing model "{created["ModelArn"]}".')
    sm.delete_model(ModelName="Model-A")
    with pytest.raises(ClientError) as info:
        sm.describe_model(ModelName="Model-A")
    assert _error(info) == ("ValidationException", f'Could not find model "{created["ModelArn"]}".')
    with pytest.raises(ClientError) as info:
        sm.delete_model(ModelName="Model-A")
    assert _error(info)[1].startswith("Could not find model")


def test_endpoint_configs(emulator: Emulator, sm: Any, world: str) -> None:
    described = sm.describe_endpoint_config(EndpointConfigName="c-1")
    assert described["EndpointConfigArn"] == _arn(emulator, "endpoint-config", "c-1")
    variant = described["ProductionVariants"][0]
    assert (variant["InstanceType"], variant["InitialInstanceCount"], variant["InitialVariantWeight"]) == (
        "ml.g5.12xlarge",
        1,
        1.0,
    )
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]] == ["c-1"]
    with pytest.raises(ClientError) as info:
        config(sm, "c-1", "m-1")
    assert (
        _error(info)[1] == f'Cannot create already existing endpoint configuration "{described["EndpointConfigArn"]}".'
    )
    with pytest.raises(ClientError) as info:
        config(sm, "c-2", "no-such-model")
    assert _error(info) == (
        "ValidationException",
        f'Could not find model "{_arn(emulator, "model", "no-such-model")}".',
    )
    sm.delete_endpoint_config(EndpointConfigName="c-1")
    with pytest.raises(ClientError) as info:
        sm.describe_endpoint_config(EndpointConfigName="c-1")
    assert _error(info)[1] == f'Could not find endpoint configuration "{described["EndpointConfigArn"]}".'


def test_endpoints(emulator: Emulator, sm: Any, world: str) -> None:
    arn = sm.create_endpoint(EndpointName="ep-1", EndpointConfigName="c-1", Tags=[{"Key": "team", "Value": "a"}])[
        "EndpointArn"
    ]
    assert arn == _arn(emulator, "endpoint", "ep-1")
    described = sm.describe_endpoint(EndpointName="ep-1")
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == "c-1"
    variant = described["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == variant["DesiredInstanceCount"] == 1
    assert variant["DeployedImages"][0]["ResolvedImage"].startswith(IMAGE.split(":")[0] + "@sha256:")
    assert described["LastModifiedTime"] >= described["CreationTime"]
    listed = sm.list_endpoints(StatusEquals="InService")["Endpoints"]
    assert [(e["EndpointName"], e["EndpointStatus"]) for e in listed] == [("ep-1", "InService")]
    with pytest.raises(ClientError) as info:
        sm.create_endpoint(EndpointName="ep-1", EndpointConfigName="c-1")
    assert _error(info) == ("ValidationException", f'Cannot create already existing endpoint "{arn}".')
    config(sm, "c-2", "m-1", count=2)
    sm.update_endpoint(EndpointName="ep-1", EndpointConfigName="c-2")
    assert sm.describe_endpoint(EndpointName="ep-1")["EndpointConfigName"] == "c-2"
    sm.delete_endpoint(EndpointName="ep-1")
    with pytest.raises(ClientError) as info:
        sm.describe_endpoint(EndpointName="ep-1")
    assert _error(info) == ("ValidationException", f'Could not find endpoint "{arn}".')
    assert sm.list_endpoints()["Endpoints"] == []


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        (
            "create_endpoint",
            {"EndpointName": "ep", "EndpointConfigName": "nope"},
            "Could not find endpoint configuration",
        ),
        ("update_endpoint", {"EndpointName": "nope", "EndpointConfigName": "c-1"}, "Could not find endpoint"),
        ("delete_endpoint", {"EndpointName": "nope"}, "Could not find endpoint"),
        ("delete_endpoint_config", {"EndpointConfigName": "nope"}, "Could not find endpoint configuration"),
    ],
)
def test_not_found_is_a_validation_exception(sm: Any, world: str, operation: str, params: Any, message: str) -> None:
    with pytest.raises(ClientError) as info:
        getattr(sm, operation)(**params)
    code, text = _error(info)
    assert code == "ValidationException" and text.startswith(message + ' "arn:aws:sagemaker:us-east-1:')


def test_create_endpoint_with_a_deleted_model_fails(sm: Any, world: str) -> None:
    sm.delete_model(ModelName="m-1")
    with pytest.raises(ClientError) as info:
        sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-1")
    assert _error(info)[1].startswith('Could not find model "')


def test_update_to_a_missing_config_fails(sm: Any, world: str) -> None:
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c-1")
    with pytest.raises(ClientError) as info:
        sm.update_endpoint(EndpointName="ep", EndpointConfigName="c-404")
    assert _error(info)[1].startswith("Could not find endpoint configuration")


def test_tags(emulator: Emulator, sm: Any, world: str) -> None:
    arn = _arn(emulator, "model", "m-1")
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "3"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}]
    sm.delete_tags(ResourceArn=arn, TagKeys=["a"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as info:
        sm.list_tags(ResourceArn=_arn(emulator, "endpoint", "nope"))
    assert _error(info)[0] == "ValidationException"


def test_list_pagination(sm: Any) -> None:
    for index in range(12):
        sm.create_model(ModelName=f"m-{index:02d}", PrimaryContainer={"Image": IMAGE})
    pages = list(sm.get_paginator("list_models").paginate(SortBy="Name", SortOrder="Ascending"))
    names = [m["ModelName"] for page in pages for m in page["Models"]]
    assert len(pages) == 2 and names == [f"m-{index:02d}" for index in range(12)]


def test_instance_type_validation(sm: Any, world: str) -> None:
    config(sm, "ok", "m-1", instance_type="ml.g5.12xlarge")
    with pytest.raises(ClientError) as info:
        config(sm, "bad", "m-1", instance_type="ml.g5.12xlarg")
    code, message = _error(info)
    assert code == "ValidationException"
    assert "Value 'ml.g5.12xlarg' at 'productionVariants.1.member.instanceType'" in message
    assert "ml.g5.12xlarge" in message  # the enum it must satisfy


def test_name_length_validation(sm: Any, world: str) -> None:
    sm.create_endpoint(EndpointName="e" * 63, EndpointConfigName="c-1")
    with pytest.raises(ClientError) as info:
        sm.create_endpoint(EndpointName="e" * 64, EndpointConfigName="c-1")
    assert "Member must have length less than or equal to 63" in _error(info)[1]


def test_missing_required_member(emulator: Emulator, world: str) -> None:
    # botocore checks required members client-side; turn that off to see the server's answer.
    with pytest.raises(ParamValidationError):
        emulator.client("sagemaker").create_endpoint(EndpointName="ep")
    raw = emulator.client("sagemaker", config=Config(parameter_validation=False))
    with pytest.raises(ClientError) as info:
        raw.create_endpoint(EndpointName="ep")
    assert _error(info) == (
        "ValidationException",
        "1 validation error detected: Value null at 'endpointConfigName' failed to satisfy constraint: "
        "Member must not be null",
    )


def test_unimplemented_operation_says_so(sm: Any) -> None:
    with pytest.raises(ClientError) as info:
        sm.list_training_jobs()
    assert _error(info)[0] == "UnknownOperationException"
