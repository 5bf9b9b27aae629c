"""The Resource Groups Tagging API's GetResources through stock boto3, as the reference documents it."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from djl_operator_kit.emulator import Emulator
from djl_operator_kit.emulator.client import EmulatorProcess
from tests.plugins.emulator import IMAGE, config, upload


def wait_gone(sm: Any, name: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(e["EndpointName"] == name for e in sm.list_endpoints()["Endpoints"]):
        assert time.monotonic() < deadline, f"{name} was never deleted"
        time.sleep(0.05)


OWNER = "djl-operator.io/owner-uid"
TYPES = ["sagemaker:endpoint", "sagemaker:endpoint-config", "sagemaker:model"]
NO_RETRY = Config(retries={"total_max_attempts": 1})


@pytest.fixture
def sm(emulator: Emulator) -> Any:
    return emulator.client("sagemaker")


@pytest.fixture
def tagging(emulator: Emulator) -> Any:
    # Exactly what the operator does: a stock client with an explicit endpoint and region.
    client = boto3.client(
        "resourcegroupstaggingapi",
        region_name=emulator.region,
        endpoint_url=emulator.url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=NO_RETRY,
    )
    yield client
    client.close()


def _arn(emulator: Emulator, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{emulator.region}:{emulator.account_id}:{kind}/{name}"


def _model(sm: Any, name: str, tags: dict[str, str] | None = None) -> None:
    extra = {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}
    sm.create_model(ModelName=name, PrimaryContainer={"Image": IMAGE}, **extra)


def _owned(tagging: Any, uid: str) -> list[dict[str, Any]]:
    """Every page of the owner query, following PaginationToken by hand like the operator."""
    found: list[dict[str, Any]] = []
    token = ""
    while True:
        page = tagging.get_resources(
            TagFilters=[{"Key": OWNER, "Values": [uid]}],
            ResourceTypeFilters=TYPES,
            ResourcesPerPage=100,
            PaginationToken=token,
        )
        found += page["ResourceTagMappingList"]
        token = page["PaginationToken"]
        if not token:
            return found


def _code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def test_owner_query_finds_exactly_the_owned_resources(emulator: Emulator, sm: Any, tagging: Any) -> None:
    data = upload(emulator.client("s3"), "models", "m.tar.gz")
    owner_a = {OWNER: "uid-a", "team": "x"}
    sm.create_model(
        ModelName="m-a",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": data},
        Tags=[{"Key": k, "Value": v} for k, v in owner_a.items()],
    )
    sm.create_endpoint_config(
        EndpointConfigName="c-a",
        ProductionVariants=[
            {"VariantName": "v", "ModelName": "m-a", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}
        ],
        Tags=[{"Key": OWNER, "Value": "uid-a"}],
    )
    sm.create_endpoint(EndpointName="e-a", EndpointConfigName="c-a", Tags=[{"Key": OWNER, "Value": "uid-a"}])
    _model(sm, "m-b", {OWNER: "uid-b"})
    _model(sm, "untagged")

    found = _owned(tagging, "uid-a")

    assert sorted(m["ResourceARN"] for m in found) == sorted(
        [_arn(emulator, "model", "m-a"), _arn(emulator, "endpoint-config", "c-a"), _arn(emulator, "endpoint", "e-a")]
    )
    model_mapping = next(m for m in found if m["ResourceARN"].endswith(":model/m-a"))
    assert model_mapping["Tags"] == [{"Key": OWNER, "Value": "uid-a"}, {"Key": "team", "Value": "x"}]
    assert set(model_mapping) == {"ResourceARN", "Tags"}
    assert [m["ResourceARN"] for m in _owned(tagging, "uid-b")] == [_arn(emulator, "model", "m-b")]
    assert _owned(tagging, "uid-nobody") == []


def test_tag_filter_semantics(emulator: Emulator, sm: Any, tagging: Any) -> None:
    _model(sm, "m-1", {"env": "prod", "team": "a"})
    _model(sm, "m-2", {"env": "dev", "team": ""})
    _model(sm, "m-3", {"env": "test"})
    _model(sm, "m-4")

    def names(*filters: dict[str, Any]) -> list[str]:
        mappings = tagging.get_resources(TagFilters=list(filters))["ResourceTagMappingList"]
        return sorted(m["ResourceARN"].rsplit("/", 1)[1] for m in mappings)

    assert names({"Key": "env", "Values": ["prod"]}) == ["m-1"]
    assert names({"Key": "env", "Values": ["prod", "dev"]}) == ["m-1", "m-2"]  # any of the values
    assert names({"Key": "team"}) == ["m-1", "m-2"]  # key present, any or no value
    assert names({"Key": "env", "Values": ["prod", "dev"]}, {"Key": "team", "Values": [""]}) == ["m-2"]  # ANDed
    assert names({"Key": "ENV"}) == []  # keys are case-sensitive
    assert names() == ["m-1", "m-2", "m-3"]  # no filter: every tagged resource, never an untagged one


def test_previously_tagged_resources_show_empty_tags_without_filters(emulator: Emulator, sm: Any, tagging: Any) -> None:
    _model(sm, "was-tagged", {"k": "v"})
    _model(sm, "never-tagged")
    sm.delete_tags(ResourceArn=_arn(emulator, "model", "was-tagged"), TagKeys=["k"])
    assert tagging.get_resources()["ResourceTagMappingList"] == [
        {"ResourceARN": _arn(emulator, "model", "was-tagged"), "Tags": []}
    ]
    assert tagging.get_resources(TagFilters=[{"Key": "k"}])["ResourceTagMappingList"] == []
    sm.add_tags(ResourceArn=_arn(emulator, "model", "never-tagged"), Tags=[{"Key": "k", "Value": "later"}])
    assert [m["ResourceARN"] for m in tagging.get_resources(TagFilters=[{"Key": "k"}])["ResourceTagMappingList"]] == [
        _arn(emulator, "model", "never-tagged")
    ]


def test_resource_type_filters(emulator: Emulator, sm: Any, tagging: Any) -> None:
    _model(sm, "m", {"k": "v"})
    upload(emulator.client("s3"), "a-bucket", "k")
    config(sm, "c", "m")
    sm.add_tags(ResourceArn=_arn(emulator, "endpoint-config", "c"), Tags=[{"Key": "k", "Value": "v"}])

    def kinds(*types: str) -> list[str]:
        mappings = tagging.get_resources(ResourceTypeFilters=list(types))["ResourceTagMappingList"]
        return sorted(m["ResourceARN"].split(":")[5] for m in mappings)

    assert kinds("sagemaker") == ["endpoint-config/c", "model/m"]
    assert kinds("sagemaker:model") == ["model/m"]
    assert kinds("sagemaker:endpoint-config", "sagemaker:endpoint") == ["endpoint-config/c"]
    assert kinds("sagemaker:endpoint") == []
    assert kinds("s3") == []


def test_pagination_visits_every_resource_once(emulator: Emulator, sm: Any, tagging: Any) -> None:
    for index in range(7):
        _model(sm, f"m-{index}", {OWNER: "uid"})
    pages, token = [], ""
    while True:
        page = tagging.get_resources(
            TagFilters=[{"Key": OWNER, "Values": ["uid"]}], ResourcesPerPage=3, PaginationToken=token
        )
        pages.append([m["ResourceARN"] for m in page["ResourceTagMappingList"]])
        token = page["PaginationToken"]
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sorted(a for p in pages for a in p) == sorted(_arn(emulator, "model", f"m-{i}") for i in range(7))
    # boto3's own paginator reads the empty last token as the end.
    paginated = tagging.get_paginator("get_resources").paginate(ResourcesPerPage=2)
    assert len([a for p in paginated for a in p["ResourceTagMappingList"]]) == 7


def test_deleted_resources_disappear_even_between_pages(emulator: Emulator, sm: Any, tagging: Any) -> None:
    for index in range(4):
        _model(sm, f"m-{index}", {"k": "v"})
    first = tagging.get_resources(ResourcesPerPage=2)
    assert [m["ResourceARN"][-3:] for m in first["ResourceTagMappingList"]] == ["m-0", "m-1"]
    sm.delete_model(ModelName="m-2")
    rest = tagging.get_resources(ResourcesPerPage=2, PaginationToken=first["PaginationToken"])
    assert [m["ResourceARN"][-3:] for m in rest["ResourceTagMappingList"]] == ["m-3"]
    assert rest["PaginationToken"] == ""
    sm.delete_model(ModelName="m-0")
    assert len(tagging.get_resources()["ResourceTagMappingList"]) == 2


def test_deleted_endpoint_disappears_after_deleting(emulator: Emulator, sm: Any, tagging: Any) -> None:
    data = upload(emulator.client("s3"), "models", "m.tar.gz")
    sm.create_model(ModelName="m", PrimaryContainer={"Image": IMAGE, "ModelDataUrl": data})
    config(sm, "c", "m")
    emulator.faults.set(delete_delay=0.3)
    sm.create_endpoint(EndpointName="e", EndpointConfigName="c", Tags=[{"Key": OWNER, "Value": "u"}])
    sm.delete_endpoint(EndpointName="e")
    # Deleting: it still exists, so it is still listed.
    assert len(_owned(tagging, "u")) == 1
    wait_gone(sm, "e")
    assert _owned(tagging, "u") == []


def test_only_the_signed_region_is_answered(emulator: Emulator, sm: Any) -> None:
    _model(sm, "m", {"k": "v"})
    here = emulator.client("resourcegroupstaggingapi")
    elsewhere = emulator.client("resourcegroupstaggingapi", region_name="eu-west-1")
    assert len(here.get_resources()["ResourceTagMappingList"]) == 1
    assert elsewhere.get_resources()["ResourceTagMappingList"] == []


def test_resource_arn_list(emulator: Emulator, sm: Any, tagging: Any) -> None:
    _model(sm, "m", {"k": "v"})
    _model(sm, "untagged")
    arns = [_arn(emulator, "model", n) for n in ("m", "untagged", "missing")]
    listed = tagging.get_resources(ResourceARNList=arns)["ResourceTagMappingList"]
    assert listed == [{"ResourceARN": arns[0], "Tags": [{"Key": "k", "Value": "v"}]}]
    with pytest.raises(ClientError) as info:
        tagging.get_resources(ResourceARNList=arns, TagFilters=[{"Key": "k"}])
    assert _code(info) == "InvalidParameterException"


@pytest.mark.parametrize(
    "params",
    [
        {"ResourcesPerPage": 0},
        {"ResourcesPerPage": 101},
        {"TagsPerPage": 99},
        {"ExcludeCompliantResources": True},
        {"PaginationToken": "not-a-token"},
        {"TagFilters": [{"Key": "k" * 129}]},
        {"TagFilters": [{"Key": f"k{i}"} for i in range(51)]},
    ],
)
def test_invalid_parameters(tagging: Any, params: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as info:
        tagging.get_resources(**params)
    assert _code(info) == "InvalidParameterException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert info.value.response["Error"]["Message"]


def test_model_constraint_message_names_the_member(tagging: Any) -> None:
    with pytest.raises(ClientError) as info:
        tagging.get_resources(TagFilters=[{"Key": "k" * 129}])
    assert "at 'tagFilters.1.member.key' failed to satisfy constraint" in info.value.response["Error"]["Message"]


def test_compliance_details_without_a_tag_policy(emulator: Emulator, sm: Any, tagging: Any) -> None:
    _model(sm, "m", {"k": "v"})
    mapping = tagging.get_resources(IncludeComplianceDetails=True)["ResourceTagMappingList"][0]
    assert mapping["ComplianceDetails"]["ComplianceStatus"] is True
    assert (
        tagging.get_resources(IncludeComplianceDetails=True, ExcludeCompliantResources=True)["ResourceTagMappingList"]
        == []
    )


def test_faults_and_call_log(emulator: Emulator, sm: Any, tagging: Any) -> None:
    emulator.faults.throttle(every=1)  # SageMaker's throttle does not reach another service's API
    tagging.get_resources()
    emulator.faults.clear()
    emulator.faults.throttle(every=1, operations=["GetResources"], limit=1)
    with pytest.raises(ClientError) as info:
        tagging.get_resources()
    assert _code(info) == "ThrottledException"
    emulator.faults.deny("GetResources")
    with pytest.raises(ClientError) as info:
        tagging.get_resources()
    assert _code(info) == "AccessDeniedException"
    assert "not authorized to perform: tag:GetResources because" in info.value.response["Error"]["Message"]
    emulator.faults.clear()
    emulator.faults.internal_error("GetResources")
    with pytest.raises(ClientError) as info:
        tagging.get_resources()
    assert _code(info) == "InternalServiceException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    calls = emulator.calls(service="resourcegroupstaggingapi", operation="GetResources")
    assert [c.error_code for c in calls] == [
        None,
        "ThrottledException",
        "AccessDeniedException",
        "InternalServiceException",
    ]
    assert calls[0].principal == "testing" and calls[0].bytes_out > 0


def test_a_retrying_client_rides_through_throttling(emulator: Emulator, sm: Any) -> None:
    _model(sm, "m", {OWNER: "u"})
    emulator.faults.throttle(every=1, operations=["GetResources"], limit=2)
    retrying = emulator.client(
        "resourcegroupstaggingapi", config=Config(retries={"max_attempts": 5, "mode": "standard"})
    )
    assert len(retrying.get_resources(TagFilters=[{"Key": OWNER}])["ResourceTagMappingList"]) == 1
    assert len(emulator.calls(operation="GetResources")) == 3


def test_emulator_process_serves_tagging(emulator_process: EmulatorProcess) -> None:
    env = emulator_process.env
    assert env["AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API"] == env["AWS_ENDPOINT_URL_SAGEMAKER"]
    sm = emulator_process.client("sagemaker")
    sm.create_model(ModelName="m", PrimaryContainer={"Image": IMAGE}, Tags=[{"Key": OWNER, "Value": "u"}])
    mappings = emulator_process.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": OWNER, "Values": ["u"]}], ResourceTypeFilters=TYPES
    )["ResourceTagMappingList"]
    assert [m["ResourceARN"].rsplit(":", 1)[1] for m in mappings] == ["model/m"]
