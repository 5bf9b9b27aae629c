"""S3 through moto, where moto and AWS differ: the emulator answers as the S3 API reference says."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from djl_operator_kit.emulator import Emulator


@pytest.fixture
def s3(emulator: Emulator) -> Any:
    client = emulator.client("s3", config=Config(retries={"total_max_attempts": 1}))
    client.create_bucket(Bucket="s3-conformance")
    for key in ("a", "b"):
        client.put_object(Bucket="s3-conformance", Key=key, Body=b"x")
    return client


def test_quiet_delete_objects_lists_only_errors(s3: Any) -> None:
    quiet = s3.delete_objects(Bucket="s3-conformance", Delete={"Objects": [{"Key": "a"}], "Quiet": True})
    assert "Deleted" not in quiet and "Errors" not in quiet
    verbose = s3.delete_objects(Bucket="s3-conformance", Delete={"Objects": [{"Key": "b"}]})
    assert verbose["Deleted"] == [{"Key": "b"}]
    assert s3.list_objects_v2(Bucket="s3-conformance")["KeyCount"] == 0


def test_every_answer_has_request_ids(emulator: Emulator, s3: Any) -> None:
    def ids(meta: dict[str, Any]) -> tuple[str, str]:
        headers = meta["HTTPHeaders"]
        return headers.get("x-amz-request-id", ""), headers.get("x-amz-id-2", "")

    assert all(ids(s3.head_object(Bucket="s3-conformance", Key="a")["ResponseMetadata"]))
    with pytest.raises(ClientError) as info:
        s3.head_object(Bucket="s3-conformance", Key="missing")
    assert all(ids(info.value.response["ResponseMetadata"]))
    emulator.faults.internal_error("GetObject")
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket="s3-conformance", Key="a")
    assert info.value.response["Error"]["Code"] == "InternalError"
    request_id, host_id = ids(info.value.response["ResponseMetadata"])
    assert request_id and host_id and info.value.response["Error"].get("RequestId", request_id) == request_id
