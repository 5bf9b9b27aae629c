"""Image URI resolution from the SageMaker SDK's tables."""

from __future__ import annotations

from typing import Any

import pytest

from djl_operator import api
from djl_operator.artifacts import images
from djl_operator.errors import SpecError

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"


def make_spec(image: dict[str, Any] | None = None, region: str = "us-east-1") -> api.DjlEndpointSpec:
    return api.DjlEndpointSpec.model_validate(
        {
            "model": {"id": "facebook/bart-large"},
            "image": image or {},
            "instance": {"type": "ml.g5.12xlarge"},
            "aws": {"executionRoleArn": ROLE, "artifactBucket": "my-sagemaker-artifacts", "region": region},
        }
    )


RESOLVE_CASES = [
    pytest.param({"framework": "djl-deepspeed", "version": "0.21.0"}, "us-east-1",
                 "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.21.0-deepspeed0.8.3-cu117",
                 id="seed-image"),
    pytest.param({"framework": "djl-lmi", "version": "0.33.0"}, "us-west-2",
                 "763104351884.dkr.ecr.us-west-2.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128", id="lmi"),
    pytest.param({"framework": "djl-deepspeed", "version": "0.22"}, "us-east-1",
                 "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.22.1-deepspeed0.9.2-cu118",
                 id="minor-means-newest-patch"),
    pytest.param({"framework": "djl-deepspeed", "version": "0.21.0"}, "cn-north-1",
                 "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/djl-inference:0.21.0-deepspeed0.8.3-cu117",
                 id="china-partition-hostname"),
    pytest.param({"framework": "djl-lmi", "uri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-djl:1"},
                 "us-east-1", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-djl:1", id="explicit-uri-wins"),
    pytest.param({"version": "0.99.0", "uri": "example.com/djl:custom"}, "xx-nowhere-1",
                 "example.com/djl:custom", id="explicit-uri-skips-tables"),
]  # fmt: skip


@pytest.mark.parametrize(("image", "region", "uri"), RESOLVE_CASES)
def test_resolve_image_uri(image: dict[str, Any], region: str, uri: str):
    assert images.resolve_image_uri(make_spec(image, region)) == uri


@pytest.mark.parametrize("framework", [f.value for f in api.ImageFramework])
def test_omitted_version_picks_the_newest_listed(framework: str):
    versions = images.available_versions(framework)
    newest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
    assert versions[0] == newest
    uri = images.resolve_image_uri(make_spec({"framework": framework}))
    assert uri == images.image_uri(framework, "us-east-1", newest)
    assert f":{newest}-" in uri


REFUSAL_CASES = [
    pytest.param({"framework": "djl-deepspeed", "version": "0.99.0"}, "us-east-1", "spec.image.version",
                 "0.21.0", id="unknown-version-lists-known"),
    pytest.param({"framework": "djl-lmi", "version": "0.21"}, "us-east-1", "spec.image.version",
                 "not in the SageMaker SDK's image tables", id="minor-without-releases"),
    pytest.param({"framework": "djl-deepspeed", "version": "0.21.0"}, "xx-nowhere-1", "spec.aws.region",
                 "not published in region 'xx-nowhere-1'", id="unknown-region"),
]  # fmt: skip


@pytest.mark.parametrize(("image", "region", "field", "words"), REFUSAL_CASES)
def test_refusals_name_the_field(image: dict[str, Any], region: str, field: str, words: str):
    with pytest.raises(SpecError) as info:
        images.resolve_image_uri(make_spec(image, region))
    assert info.value.field == field
    assert words in str(info.value)


def test_unknown_framework_names_the_framework_field():
    with pytest.raises(SpecError) as info:
        images.image_uri("djl-imaginary", "us-east-1")
    assert info.value.field == "spec.image.framework"


# Regions with their own registry account or DNS suffix (China, GovCloud, opt-in regions).
_SPECIAL_REGIONS = ("af-south-1", "ap-east-1", "cn-north-1", "eu-south-1", "il-central-1", "us-gov-west-1")


def _cross_check_cases() -> list[tuple[str, str, str]]:
    """Every listed version in us-east-1, plus each family's newest version in the special regions."""
    cases = []
    for framework in (f.value for f in api.ImageFramework):
        versions = images.available_versions(framework)
        cases += [(framework, v, "us-east-1") for v in versions]
        listed = images.available_regions(framework, versions[0])
        cases += [(framework, versions[0], region) for region in _SPECIAL_REGIONS if region in listed]
    return cases


def test_same_uris_as_the_sdks_retrieve():
    # The SDK's own resolver is slow to import (~1.3 s) and to call (~40 ms);
    # the operator reads its tables directly and must agree with it.
    from sagemaker.core import image_uris

    cases = _cross_check_cases()
    assert len(cases) > 50
    mismatches = [
        (framework, version, region)
        for framework, version, region in cases
        if images.image_uri(framework, region, version)
        != image_uris.retrieve(framework=framework, region=region, version=version)
    ]
    assert mismatches == []


def test_tables_are_read_from_the_installed_sdk():
    assert images.sdk_version()
    assert "0.21.0" in images.available_versions("djl-deepspeed")
    assert "us-east-1" in images.available_regions("djl-deepspeed", "0.21.0")
