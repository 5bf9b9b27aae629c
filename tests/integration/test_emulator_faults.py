"""Request-level faults and call accounting, as a stock boto3 client sees them."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from djl_operator_kit.emulator import Emulator
from tests.plugins.emulator import IMAGE, config, model, upload

# botocore's "max_attempts" counts retries (max_attempts=1 still retries once);
# "total_max_attempts" counts the first attempt too, so 1 really means no retry.
NO_RETRY = Config(retries={"total_max_attempts": 1})


def _code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def test_max_attempts_one_still_retries_once(emulator: Emulator) -> None:
    sm = emulator.client("sagemaker", config=Config(retries={"max_attempts": 1}))
    emulator.faults.throttle(every=1, operations=["ListModels"])
    with pytest.raises(ClientError) as info:
        sm.list_models()
    assert _code(info) == "ThrottlingException"
    assert len(emulator.calls(operation="ListModels")) == 2


def test_throttling_surfaces_as_client_error(emulator: Emulator) -> None:
    sm = emulator.client("sagemaker", config=NO_RETRY)
    emulator.faults.throttle(every=2)
    sm.list_models()
    with pytest.raises(ClientError) as info:
        sm.list_models()
    assert _code(info) == "ThrottlingException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert [c.error_code for c in emulator.calls(operation="ListModels")] == [None, "ThrottlingException"]


def test_botocore_retries_through_seeded_throttling(emulator: Emulator) -> None:
    sm = emulator.client("sagemaker", config=Config(retries={"max_attempts": 10, "mode": "standard"}))
    emulator.faults.throttle(rate=0.5, seed=1, operations=["ListModels"], limit=3)
    sm.list_models()
    sm.list_models()
    throttled = [c for c in emulator.calls(operation="ListModels") if c.error_code == "ThrottlingException"]
    assert 1 <= len(throttled) <= 3


def test_access_denied_and_internal_error(emulator: Emulator) -> None:
    sm = emulator.client("sagemaker", config=NO_RETRY)
    emulator.faults.deny("CreateModel")
    emulator.faults.internal_error("DescribeEndpoint")
    with pytest.raises(ClientError) as info:
        sm.create_model(ModelName="m", PrimaryContainer={"Image": IMAGE})
    assert _code(info) == "AccessDeniedException"
    assert f"arn:aws:sagemaker:us-east-1:{emulator.account_id}:model/m" in str(info.value)
    with pytest.raises(ClientError) as info:
        sm.describe_endpoint(EndpointName="x")
    assert _code(info) == "InternalFailure"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    emulator.faults.clear()
    sm.create_model(ModelName="m", PrimaryContainer={"Image": IMAGE})


def test_quota_is_resource_limit_exceeded(emulator: Emulator) -> None:
    sm = emulator.client("sagemaker")
    model(sm, "m", upload(emulator.client("s3"), "quota-bucket", "m.tar.gz"))
    config(sm, "c", "m", count=2)
    emulator.faults.quota("ml.g5.12xlarge", 1)
    with pytest.raises(sm.exceptions.ResourceLimitExceeded):
        sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")


def test_calls_count_sagemaker_and_s3(emulator: Emulator) -> None:
    sm, s3 = emulator.client("sagemaker"), emulator.client("s3")
    s3.create_bucket(Bucket="art")
    s3.put_object(
        Bucket="art", Key="a/model.tar.gz", Body=b"x" * 1000, ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/k"
    )
    head = s3.head_object(Bucket="art", Key="a/model.tar.gz")
    assert head["ServerSideEncryption"] == "aws:kms" and head["ContentLength"] == 1000
    with pytest.raises(ClientError):
        s3.head_object(Bucket="art", Key="missing")
    upload_id = s3.create_multipart_upload(Bucket="art", Key="big")["UploadId"]
    part = s3.upload_part(Bucket="art", Key="big", UploadId=upload_id, PartNumber=1, Body=b"y" * 2048)
    s3.complete_multipart_upload(
        Bucket="art",
        Key="big",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert s3.get_object(Bucket="art", Key="big")["Body"].read() == b"y" * 2048
    model(sm, "m", "s3://art/a/model.tar.gz")
    config(sm, "c", "m")
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")

    ops = [c.operation for c in emulator.calls(service="s3")]
    assert ops == [
        "CreateBucket",
        "PutObject",
        "HeadObject",
        "HeadObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "GetObject",
    ]  # the emulator's own model-data check is not counted
    put = emulator.calls(service="s3", operation="PutObject")[0]
    assert (put.resource, put.bytes, put.error_code) == ("art/a/model.tar.gz", 1000, None)
    assert emulator.calls(service="s3", operation="UploadPart")[0].bytes == 2048
    assert emulator.calls(service="s3", operation="HeadObject")[1].error_code == "404"
    assert emulator.calls(service="s3", operation="GetObject")[0].bytes_out == 2048
    assert [c.operation for c in emulator.calls(service="sagemaker")] == [
        "CreateModel",
        "CreateEndpointConfig",
        "CreateEndpoint",
    ]
    assert emulator.calls(operation="CreateEndpoint")[0].resource == "ep"
    emulator.reset_calls()
    assert emulator.calls() == []


def test_two_emulators_do_not_share_state(make_emulator: Any) -> None:
    first, second = make_emulator(), make_emulator()
    assert first.port != second.port and first.account_id != second.account_id
    first.client("sagemaker").create_model(ModelName="only-in-first", PrimaryContainer={"Image": IMAGE})
    first.client("s3").create_bucket(Bucket="first-bucket")
    assert second.client("sagemaker").list_models()["Models"] == []
    assert second.client("s3").list_buckets()["Buckets"] == []
    assert [b["Name"] for b in first.client("s3").list_buckets()["Buckets"]] == ["first-bucket"]
    assert not second.calls(operation="CreateModel") and not second.calls(operation="CreateBucket")


def _children() -> set[int]:
    """PIDs whose parent is this process (Linux /proc; no psutil needed)."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue  # exited meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.add(int(entry))
    return found


def test_stop_leaves_no_thread_or_process() -> None:
    before_threads = set(threading.enumerate())
    before_children = _children()
    emu = Emulator().start()
    sm, s3 = emu.client("sagemaker"), emu.client("s3")
    sm.list_models()  # leave keep-alive connections open on both servers
    s3.list_buckets()
    emu.stop()
    assert set(threading.enumerate()) == before_threads
    assert _children() == before_children
    emu.stop()  # idempotent


def test_many_threads_at_once(emulator: Emulator) -> None:
    sm = emulator.client("sagemaker")
    errors: list[BaseException] = []

    def create(index: int) -> None:
        try:
            sm.create_model(ModelName=f"m-{index}", PrimaryContainer={"Image": IMAGE})
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list(sm.get_paginator("list_models").paginate(PaginationConfig={"PageSize": 100}))) == 1
    assert len(emulator.calls(operation="CreateModel")) == 40
