"""The SageMaker state machine on a fake clock: every transition at its exact time, no sleeping."""

from __future__ import annotations

from typing import Any

import pytest

from djl_operator_kit.emulator.errors import ApiError
from djl_operator_kit.emulator.faults import CAPACITY_REASON, Delays, Faults
from djl_operator_kit.emulator.sagemaker import SageMaker

IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def objects() -> set[str]:
    return {"s3://b/m1.tar.gz", "s3://b/m2.tar.gz"}


@pytest.fixture
def sm(clock: Clock, objects: set[str]) -> SageMaker:
    faults = Faults(Delays(create=10, update=20, delete=5, rollback=7))
    return SageMaker("us-east-1", "123456789012", faults, lambda b, k, p: f"s3://{b}/{k}" in objects, clock)


def _model(sm: SageMaker, name: str, data: str) -> None:
    sm.handle("CreateModel", {"ModelName": name, "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": data}})


def _config(sm: SageMaker, name: str, model: str, count: int = 1, itype: str = "ml.g5.12xlarge") -> None:
    variant = {"VariantName": "AllTraffic", "ModelName": model, "InstanceType": itype, "InitialInstanceCount": count}
    sm.handle("CreateEndpointConfig", {"EndpointConfigName": name, "ProductionVariants": [variant]})


def _describe(sm: SageMaker, name: str = "ep") -> dict[str, Any]:
    return sm.handle("DescribeEndpoint", {"EndpointName": name})


def _setup(sm: SageMaker) -> None:
    _model(sm, "m1", "s3://b/m1.tar.gz")
    _model(sm, "m2", "s3://b/m2.tar.gz")
    _config(sm, "c1", "m1", count=2)
    _config(sm, "c2", "m2", count=1)


def test_create_is_creating_until_the_delay_then_in_service(sm: SageMaker, clock: Clock) -> None:
    _setup(sm)
    sm.handle("CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c1"})
    ep = _describe(sm)
    assert ep["EndpointStatus"] == "Creating" and "ProductionVariants" not in ep
    assert ep["PendingDeploymentSummary"]["EndpointConfigName"] == "c1"
    clock.now += 9.9
    assert _describe(sm)["EndpointStatus"] == "Creating"
    clock.now += 0.1
    ep = _describe(sm)
    assert ep["EndpointStatus"] == "InService" and "PendingDeploymentSummary" not in ep
    assert ep["LastModifiedTime"] == 1010.0 and ep["CreationTime"] == 1000.0
    variant = ep["ProductionVariants"][0]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"], variant["CurrentWeight"]) == (2, 2, 1.0)
    assert variant["DeployedImages"][0]["SpecifiedImage"] == IMAGE
    assert ep["EndpointArn"] == "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep"


def test_update_serves_old_config_then_switches(sm: SageMaker, clock: Clock) -> None:
    _setup(sm)
    sm.handle("CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c1"})
    clock.now += 10
    sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c2"})
    ep = _describe(sm)
    assert (ep["EndpointStatus"], ep["EndpointConfigName"]) == ("Updating", "c1")
    assert ep["PendingDeploymentSummary"]["EndpointConfigName"] == "c2"
    clock.now += 20
    ep = _describe(sm)
    assert (ep["EndpointStatus"], ep["EndpointConfigName"]) == ("InService", "c2")
    assert ep["ProductionVariants"][0]["CurrentInstanceCount"] == 1  # not retained: the config's count


@pytest.mark.parametrize(
    ("exclude", "expected_count"),
    [
        (None, 5),
        ([{"VariantPropertyType": "DesiredWeight"}], 5),
        ([{"VariantPropertyType": "DesiredInstanceCount"}], 1),
    ],
)
def test_retain_all_variant_properties(sm: SageMaker, clock: Clock, exclude: Any, expected_count: int) -> None:
    _setup(sm)
    sm.handle("CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c1"})
    clock.now += 10
    sm.handle(
        "UpdateEndpointWeightsAndCapacities",
        {
            "EndpointName": "ep",
            "DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredInstanceCount": 5}],
        },
    )
    assert _describe(sm)["ProductionVariants"][0]["DesiredInstanceCount"] == 5
    clock.now += 20
    assert _describe(sm)["ProductionVariants"][0]["CurrentInstanceCount"] == 5
    params: dict[str, Any] = {"EndpointName": "ep", "EndpointConfigName": "c2", "RetainAllVariantProperties": True}
    if exclude:
        params["ExcludeRetainedVariantProperties"] = exclude
    sm.handle("UpdateEndpoint", params)
    clock.now += 20
    assert _describe(sm)["ProductionVariants"][0]["CurrentInstanceCount"] == expected_count


def test_failed_update_rolls_back_to_the_old_config(sm: SageMaker, clock: Clock) -> None:
    _setup(sm)
    sm.faults.fail_model_start(model_name="m2")
    sm.handle("CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c1"})
    clock.now += 10
    sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c2"})
    assert _describe(sm)["EndpointStatus"] == "Updating"
    clock.now += 20
    assert _describe(sm)["EndpointStatus"] == "RollingBack"
    clock.now += 7
    ep = _describe(sm)
    assert (ep["EndpointStatus"], ep["EndpointConfigName"]) == ("InService", "c1")
    assert "did not pass the ping health check" in ep["FailureReason"]
    assert ep["ProductionVariants"][0]["CurrentInstanceCount"] == 2


def test_missing_model_data_fails_the_create(sm: SageMaker, clock: Clock, objects: set[str]) -> None:
    _setup(sm)
    objects.discard("s3://b/m1.tar.gz")
    sm.handle("CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c1"})
    clock.now += 10
    ep = _describe(sm)
    assert ep["EndpointStatus"] == "Failed"
    assert ep["FailureReason"].startswith("Failed to download model data(bucket: b, key: m1.tar.gz).")


def test_capacity_error_fails_the_create(sm: SageMaker, clock: Clock) -> None:
    _setup(sm)
    sm.faults.capacity_error(instance_type="ml.g5.12xlarge")
    sm.handle("CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c1"})
    clock.now += 10
    assert _describe(sm)["FailureReason"] == CAPACITY_REASON


def _error(sm: SageMaker, operation: str, params: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as info:
        sm.handle(operation, params)
    return info.value


def test_in_progress_and_failed_endpoints_refuse_changes(sm: SageMaker, clock: Clock) -> None:
    _setup(sm)
    sm.handle("CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c1"})
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep"
    for operation, params in [
        ("DeleteEndpoint", {"EndpointName": "ep"}),
        ("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c2"}),
    ]:
        err = _error(sm, operation, params)
        assert (err.code, err.message) == ("ValidationException", f'Cannot update in-progress endpoint "{arn}".')
    sm.force_failed("ep", "drift")
    err = _error(sm, "UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c2"})
    assert err.message == f'Cannot update failed endpoint "{arn}".'
    sm.handle("DeleteEndpoint", {"EndpointName": "ep"})
    assert _describe(sm)["EndpointStatus"] == "Deleting"
    clock.now += 5
    assert _error(sm, "DescribeEndpoint", {"EndpointName": "ep"}).message == f'Could not find endpoint "{arn}".'


def test_names_are_unique_case_insensitively(sm: SageMaker) -> None:
    _setup(sm)
    err = _error(sm, "CreateModel", {"ModelName": "M1", "PrimaryContainer": {"Image": IMAGE}})
    assert err.message == 'Cannot create already existing model "arn:aws:sagemaker:us-east-1:123456789012:model/m1".'


def test_quota_refuses_deployments_past_it(sm: SageMaker) -> None:
    _setup(sm)
    sm.faults.quota("ml.g5.12xlarge", 1)
    err = _error(sm, "CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c1"})
    assert err.code == "ResourceLimitExceeded" and "'ml.g5.12xlarge for endpoint usage' is 1 Instances" in err.message


def test_list_filters_sorts_and_pages(sm: SageMaker, clock: Clock) -> None:
    for index in range(5):
        _model(sm, f"model-{index}", "s3://b/m1.tar.gz")
        clock.now += 1
    first = sm.handle("ListModels", {"MaxResults": 2, "SortBy": "Name", "SortOrder": "Ascending"})
    assert [m["ModelName"] for m in first["Models"]] == ["model-0", "model-1"]
    rest = sm.handle(
        "ListModels", {"MaxResults": 10, "SortBy": "Name", "SortOrder": "Ascending", "NextToken": first["NextToken"]}
    )
    assert [m["ModelName"] for m in rest["Models"]] == ["model-2", "model-3", "model-4"] and "NextToken" not in rest
    newest = sm.handle("ListModels", {"NameContains": "MODEL-", "MaxResults": 1})
    assert newest["Models"][0]["ModelName"] == "model-4"
    assert sm.handle("ListModels", {"CreationTimeBefore": 1001.5})["Models"][0]["ModelName"] == "model-1"


def test_an_update_waits_for_the_new_fleet_to_be_healthy(sm: SageMaker, clock: Clock) -> None:
    _setup(sm)
    healthy = {"now": False}
    asked: list[tuple[str, list[str]]] = []

    def hook(endpoint: str, targets: list[Any]) -> Any:
        asked.append((endpoint, [t.model_name for t in targets]))
        return lambda: healthy["now"]

    sm.deploy_hook = hook
    sm.handle("CreateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c1"})
    clock.now += 10
    sm.handle("UpdateEndpoint", {"EndpointName": "ep", "EndpointConfigName": "c2"})
    assert asked == [("ep", ["m2"])]
    clock.now += 25  # past the update delay, the new fleet still starting
    ep = _describe(sm)
    assert (ep["EndpointStatus"], ep["EndpointConfigName"]) == ("Updating", "c1")
    assert sm.runtime_target("ep", None).model_name == "m1"  # type: ignore[union-attr]
    healthy["now"] = True
    ep = _describe(sm)
    assert (ep["EndpointStatus"], ep["EndpointConfigName"]) == ("InService", "c2")
    assert ep["LastModifiedTime"] == clock.now  # when it switched, not when the delay ended
