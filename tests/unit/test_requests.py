"""SageMaker request builders, validated against botocore's SageMaker service model."""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import pytest
from botocore.model import ListShape, Shape, StringShape, StructureShape
from botocore.validate import ParamValidator

from djl_operator import api
from djl_operator.artifacts import requests
from djl_operator.errors import SpecError

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.21.0-deepspeed0.8.3-cu117"
DATA = "s3://my-sagemaker-artifacts/djl-operator/default/bart/" + "ab" * 32 + "/model.tar.gz"
SAGEMAKER = botocore.session.get_session().get_service_model("sagemaker")


def make_spec(**sections: Any) -> api.DjlEndpointSpec:
    body: dict[str, Any] = {
        "model": {"id": "facebook/bart-large"},
        "instance": {"type": "ml.g5.12xlarge"},
        "aws": {"executionRoleArn": ROLE, "artifactBucket": "my-sagemaker-artifacts"},
    }
    for name, value in sections.items():
        body[name] = {**body.get(name, {}), **value}
    return api.DjlEndpointSpec.model_validate(body)


def _strict_problems(shape: Shape, value: Any, path: str) -> list[str]:
    """What ParamValidator leaves out: enums, maximum lengths/values and (Python-compatible) patterns."""
    problems = []
    meta = shape.metadata
    if isinstance(shape, StructureShape):
        for key, member in value.items():
            problems += _strict_problems(shape.members[key], member, f"{path}.{key}")
        return problems
    if isinstance(shape, ListShape):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: more than {meta['max']} items")
        for i, item in enumerate(value):
            problems += _strict_problems(shape.member, item, f"{path}[{i}]")
        return problems
    if isinstance(shape, StringShape):
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} not in enum")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: longer than {meta['max']}")
        pattern = meta.get("pattern")
        if pattern and "\\p{" not in pattern and not re.fullmatch(pattern, value):
            problems.append(f"{path}: {value!r} does not match {pattern}")
    elif "max" in meta and isinstance(value, int) and value > meta["max"]:
        problems.append(f"{path}: above {meta['max']}")
    return problems


def _input_shape(operation: str) -> StructureShape:
    shape = SAGEMAKER.operation_model(operation).input_shape
    assert shape is not None
    return shape


def assert_valid(operation: str, request: dict[str, Any]) -> None:
    shape = _input_shape(operation)
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    assert _strict_problems(shape, request, operation) == []


def test_the_strict_validator_catches_what_it_claims():
    shape = _input_shape("CreateEndpoint")
    bad = {"EndpointName": "has_underscore", "EndpointConfigName": "x" * 64}
    assert [p.split(":")[0] for p in _strict_problems(shape, bad, "r")] == [
        "r.EndpointName", "r.EndpointConfigName", "r.EndpointConfigName",
    ]  # fmt: skip
    assert ParamValidator().validate({"EndpointName": "e"}, shape).has_errors()  # missing EndpointConfigName


MODEL_CASES = [
    pytest.param({}, {}, None, id="no-tags"),
    pytest.param({}, {"b": "2", "a": "1"}, [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}], id="sorted-tags"),
]


@pytest.mark.parametrize(("sections", "tags", "expected_tags"), MODEL_CASES)
def test_create_model_request(sections: dict[str, Any], tags: dict[str, str], expected_tags: Any):
    request = requests.create_model_request(
        make_spec(**sections), model_name="bart-abcdef12", image_uri=IMAGE, model_data_url=DATA, tags=tags
    )
    assert_valid("CreateModel", request)
    assert request["ModelName"] == "bart-abcdef12"
    assert request["ExecutionRoleArn"] == ROLE
    # No Environment: DJL's OPTION_* variables would override serving.properties.
    assert request["PrimaryContainer"] == {"Image": IMAGE, "ModelDataUrl": DATA}
    assert request.get("Tags") == expected_tags


CONFIG_CASES = [
    pytest.param(
        {},
        {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g5.12xlarge", "InitialInstanceCount": 1},
        None,
        id="minimal",
    ),
    pytest.param(
        {"instance": {"count": 2},
         "timeouts": {"modelDataDownloadSeconds": 1800, "containerStartupHealthCheckSeconds": 3600}},
        {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g5.12xlarge", "InitialInstanceCount": 2,
         "ModelDataDownloadTimeoutInSeconds": 1800, "ContainerStartupHealthCheckTimeoutInSeconds": 3600},
        None,
        id="seed-timeouts",
    ),
    pytest.param(
        {"instance": {"type": "ml.m5.xlarge", "volumeSizeGB": 100}, "aws": {"kmsKeyId": "alias/djl"}},
        {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 1,
         "VolumeSizeInGB": 100},
        "alias/djl",
        id="ebs-instance-volume-and-kms",
    ),
    pytest.param(
        {"aws": {"kmsKeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}},
        {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g5.12xlarge", "InitialInstanceCount": 1},
        None,
        id="local-nvme-instance-no-kms-key",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("sections", "variant", "kms"), CONFIG_CASES)
def test_create_endpoint_config_request(sections: dict[str, Any], variant: dict[str, Any], kms: str | None):
    request = requests.create_endpoint_config_request(
        make_spec(**sections), config_name="bart-abcdef12", model_name="m", tags={"team": "ml"}
    )
    assert_valid("CreateEndpointConfig", request)
    assert request["EndpointConfigName"] == "bart-abcdef12"
    assert request["ProductionVariants"] == [variant]
    assert request.get("KmsKeyId") == kms
    assert request["Tags"] == [{"Key": "team", "Value": "ml"}]


def test_volume_size_on_a_local_storage_instance_is_refused():
    spec = make_spec(instance={"type": "ml.g5.12xlarge", "volumeSizeGB": 100})
    with pytest.raises(SpecError) as info:
        requests.create_endpoint_config_request(spec, config_name="c", model_name="m", tags={})
    assert info.value.field == "spec.instance.volumeSizeGB"


@pytest.mark.parametrize(
    ("instance_type", "local"),
    [("ml.g5.12xlarge", True), ("ml.g4dn.xlarge", True), ("ml.p4d.24xlarge", True), ("ml.p6-b200.48xlarge", True),
     ("ml.m5d.large", True), ("ml.m5.xlarge", False), ("ml.inf2.xlarge", False), ("ml.p3.2xlarge", False),
     ("ml.c5.large", False)],
)  # fmt: skip
def test_local_storage_families(instance_type: str, local: bool):
    assert instance_type in api.instance_types.hosting_instance_types()
    assert requests.has_local_storage(instance_type) is local


def test_every_local_storage_family_exists_in_botocore():
    families = {t.split(".")[1] for t in api.instance_types.hosting_instance_types()}
    assert requests.LOCAL_STORAGE_FAMILIES - families == {"p3dn"}  # p3dn is training-only


@pytest.mark.parametrize("tags", [{}, {"team": "ml"}])
def test_create_endpoint_request(tags: dict[str, str]):
    request = requests.create_endpoint_request(endpoint_name="default-bart", config_name="bart-abcdef12", tags=tags)
    assert_valid("CreateEndpoint", request)
    assert request["EndpointName"] == "default-bart"
    assert request["EndpointConfigName"] == "bart-abcdef12"
    assert ("Tags" in request) is bool(tags)


@pytest.mark.parametrize(
    ("changed", "excluded"),
    [(False, None), (True, [{"VariantPropertyType": "DesiredInstanceCount"}])],
)
def test_update_endpoint_request(changed: bool, excluded: Any):
    request = requests.update_endpoint_request(
        endpoint_name="default-bart", config_name="bart-12345678", instance_count_changed=changed
    )
    assert_valid("UpdateEndpoint", request)
    assert request["RetainAllVariantProperties"] is True
    assert request.get("ExcludeRetainedVariantProperties") == excluded
