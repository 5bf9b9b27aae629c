"""STS GetCallerIdentity (Query protocol, XML) through stock boto3 and raw HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from djl_operator_kit.emulator import Emulator

NO_RETRY = Config(retries={"total_max_attempts": 1})


@pytest.fixture
def sts(emulator: Emulator) -> Any:
    return emulator.client("sts", config=NO_RETRY)


def test_identity_comes_from_the_access_key(emulator: Emulator, sts: Any) -> None:
    me = sts.get_caller_identity()
    assert me["Account"] == emulator.account_id
    assert me["Arn"] == f"arn:aws:iam::{emulator.account_id}:user/testing"
    assert me["UserId"].startswith("AIDA") and len(me["UserId"]) == 21
    other = emulator.client("sts", aws_access_key_id="AKIAOTHERKEY", aws_secret_access_key="x")
    theirs = other.get_caller_identity()
    assert theirs["Arn"].endswith(":user/AKIAOTHERKEY") and theirs["UserId"] != me["UserId"]
    assert theirs["UserId"] == other.get_caller_identity()["UserId"]  # stable per key
    assert [c.principal for c in emulator.calls(service="sts", operation="GetCallerIdentity")] == [
        "testing",
        "AKIAOTHERKEY",
        "AKIAOTHERKEY",
    ]


def test_the_request_id_in_the_body_is_the_header_one(sts: Any) -> None:
    meta = sts.get_caller_identity()["ResponseMetadata"]
    assert meta["RequestId"] == meta["HTTPHeaders"]["x-amzn-requestid"]


def _raw(url: str, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_unsigned_and_unknown_requests_get_query_errors(emulator: Emulator) -> None:
    status, body = _raw(emulator.url + "/", b"Action=GetCallerIdentity&Version=2011-06-15")
    assert status == 403
    assert b"<Code>MissingAuthenticationToken</Code>" in body and b"<Type>Sender</Type>" in body
    status, body = _raw(emulator.url + "/?Action=AssumeRole&Version=2011-06-15")
    assert status == 400 and b"<Code>InvalidAction</Code>" in body
    status, body = _raw(emulator.url + "/", b"Action=GetCallerIdentity&Version=2010-01-01")
    assert status == 400 and b"<Code>InvalidAction</Code>" in body


def test_faults(emulator: Emulator, sts: Any) -> None:
    emulator.faults.deny("GetCallerIdentity")
    assert sts.get_caller_identity()["Account"] == emulator.account_id  # needs no permission
    emulator.faults.throttle(every=1, operations=["GetCallerIdentity"], limit=1)
    with pytest.raises(ClientError) as info:
        sts.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "Throttling"
    emulator.faults.internal_error("GetCallerIdentity")
    with pytest.raises(ClientError) as info:
        sts.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "InternalFailure"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    errors = [c.error_code for c in emulator.calls(service="sts")]
    assert errors == [None, "Throttling", "InternalFailure"]
