"""GetResources on a fake clock: pagination tokens expire after 15 minutes, as the reference says."""

from __future__ import annotations

import pytest

from djl_operator_kit.emulator.errors import ApiError
from djl_operator_kit.emulator.faults import Faults
from djl_operator_kit.emulator.sagemaker import SageMaker
from djl_operator_kit.emulator.tagging import TOKEN_LIFETIME, TaggingApi

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _world(clock: Clock) -> TaggingApi:
    sm = SageMaker("us-east-1", "123456789012", Faults(), lambda b, k, p: True, clock)
    for index in range(3):
        sm.handle(
            "CreateModel",
            {"ModelName": f"m-{index}", "PrimaryContainer": {"Image": IMAGE}, "Tags": [{"Key": "k", "Value": "v"}]},
        )
    return TaggingApi(sm, clock)


def test_a_token_is_good_for_fifteen_minutes() -> None:
    clock = Clock()
    api = _world(clock)
    first = api.handle("GetResources", {"ResourcesPerPage": 1}, "us-east-1")
    clock.now += TOKEN_LIFETIME
    second = api.handle(
        "GetResources", {"ResourcesPerPage": 1, "PaginationToken": first["PaginationToken"]}, "us-east-1"
    )
    assert second["ResourceTagMappingList"][0]["ResourceARN"].endswith("model/m-1")
    clock.now += 0.001
    with pytest.raises(ApiError) as info:
        api.handle("GetResources", {"ResourcesPerPage": 1, "PaginationToken": first["PaginationToken"]}, "us-east-1")
    assert info.value.code == "PaginationTokenExpiredException"


def test_tags_per_page_never_splits_a_resource() -> None:
    clock = Clock()
    sm = SageMaker("us-east-1", "123456789012", Faults(), lambda b, k, p: True, clock)
    for index in range(3):
        tags = [{"Key": f"k{t}", "Value": "v"} for t in range(60)]
        sm.handle("CreateModel", {"ModelName": f"m-{index}", "PrimaryContainer": {"Image": IMAGE}, "Tags": tags})
    api = TaggingApi(sm, clock)
    sizes, token = [], ""
    while True:
        page = api.handle("GetResources", {"TagsPerPage": 100, "PaginationToken": token}, "us-east-1")
        sizes.append(len(page["ResourceTagMappingList"]))
        token = page["PaginationToken"]
        if not token:
            break
    assert sizes == [1, 1, 1]  # 60 + 60 tags would exceed 100
