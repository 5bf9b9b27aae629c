"""Validation from botocore's SageMaker model: AWS's constraints and AWS's wording."""

from __future__ import annotations

import pytest

from djl_operator_kit.emulator.errors import ApiError
from djl_operator_kit.emulator.validation import compile_pattern, validate, violations

VARIANT = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g5.12xlarge", "InitialInstanceCount": 1}


def _config(**variant_changes: object) -> dict[str, object]:
    return {"EndpointConfigName": "c", "ProductionVariants": [{**VARIANT, **variant_changes}]}


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("CreateEndpointConfig", _config(), []),
        ("CreateEndpointConfig", _config(InstanceType="ml.g6e.xlarge"), []),
        (
            "CreateEndpointConfig",
            _config(InstanceType="ml.g5.12xlarg"),
            [
                "Value 'ml.g5.12xlarg' at 'productionVariants.1.member.instanceType' failed to satisfy "
                "constraint: Member must satisfy enum value set: ["
            ],
        ),
        (
            "CreateEndpointConfig",
            _config(InitialInstanceCount=0),
            [
                "Value '0' at 'productionVariants.1.member.initialInstanceCount' failed to satisfy constraint: "
                "Member must have value greater than or equal to 1"
            ],
        ),
        (
            "CreateEndpointConfig",
            {"EndpointConfigName": "c", "ProductionVariants": []},
            [
                "at 'productionVariants' failed to satisfy constraint: "
                "Member must have length greater than or equal to 1"
            ],
        ),
        ("CreateEndpoint", {"EndpointName": "e" * 63, "EndpointConfigName": "c"}, []),
        (
            "CreateEndpoint",
            {"EndpointName": "e" * 64, "EndpointConfigName": "c"},
            [
                "at 'endpointName' failed to satisfy constraint: Member must have length less than or equal to 63",
                "at 'endpointName' failed to satisfy constraint: Member must satisfy regular expression pattern",
            ],
        ),
        (
            "CreateEndpoint",
            {"EndpointName": "bad_name", "EndpointConfigName": "c"},
            [
                "Value 'bad_name' at 'endpointName' failed to satisfy constraint: Member must satisfy regular "
                "expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
            ],
        ),
        (
            "CreateEndpoint",
            {"EndpointName": "e"},
            ["Value null at 'endpointConfigName' failed to satisfy constraint: Member must not be null"],
        ),
        ("CreateEndpoint", {"EndpointName": 5, "EndpointConfigName": "c"}, ["Member must be of type string"]),
        (
            "AddTags",
            {
                "ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m",
                "Tags": [{"Key": "ünïcode key", "Value": "v"}],
            },
            [],
        ),
        (
            "AddTags",
            {"ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m", "Tags": [{"Key": "a|b", "Value": "v"}]},
            ["at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular expression"],
        ),
        (
            "UpdateEndpoint",
            {
                "EndpointName": "e",
                "EndpointConfigName": "c",
                "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "InstanceCount"}],
            },
            ["Member must satisfy enum value set: [DesiredInstanceCount, DesiredWeight, DataCaptureConfig]"],
        ),
        ("ListEndpoints", {"MaxResults": 101}, ["Member must have value less than or equal to 100"]),
    ],
)
def test_violations(operation: str, params: dict[str, object], expected: list[str]) -> None:
    found = violations(operation, params)
    assert len(found) == len(expected), found
    for message, fragment in zip(found, expected, strict=True):
        assert fragment in message


def test_validate_reports_every_violation_in_one_message() -> None:
    with pytest.raises(ApiError) as info:
        validate("CreateEndpoint", {"EndpointName": "x_y"})
    assert info.value.code == "ValidationException"
    assert info.value.message.startswith("2 validation errors detected: ")
    assert "'endpointName'" in info.value.message and "'endpointConfigName'" in info.value.message


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "abc-def", True),
        (r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "abc-", False),
        (r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)", "Team 7: ü", True),
        (r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)", "semi;colon", False),
    ],
)
def test_java_patterns_translate(pattern: str, text: str, matches: bool) -> None:
    regex = compile_pattern(pattern)
    assert regex is not None
    assert bool(regex.fullmatch(text)) is matches


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"TagFilters": [{"Key": "djl-operator.io/owner-uid", "Values": ["u"]}], "ResourcesPerPage": 100}, []),
        (
            {"TagFilters": [{"Key": ""}]},
            ["at 'tagFilters.1.member.key' failed to satisfy constraint: Member must have"],
        ),
        (
            {"TagFilters": [{"Key": "k", "Values": ["v"] * 21}]},
            ["at 'tagFilters.1.member.values' failed to satisfy constraint: Member must have length less than or"],
        ),
        ({"ResourceTypeFilters": ["s" * 257]}, ["at 'resourceTypeFilters.1.member' failed to satisfy constraint"]),
        ({"ResourcesPerPage": "10"}, ["at 'resourcesPerPage' failed to satisfy constraint: Member must be of type"]),
    ],
)
def test_tagging_get_resources_from_its_own_model(params: dict[str, object], expected: list[str]) -> None:
    found = violations("GetResources", params, "resourcegroupstaggingapi")
    assert len(found) == len(expected), found
    for message, fragment in zip(found, expected, strict=True):
        assert fragment in message
    if expected:
        with pytest.raises(ApiError) as info:
            validate("GetResources", params, "resourcegroupstaggingapi", code="InvalidParameterException")
        assert info.value.code == "InvalidParameterException"
