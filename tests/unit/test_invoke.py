"""The pure parts of `djl-operator invoke`: resource -> endpoint, payload, output, errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from botocore.exceptions import ClientError

from djl_operator.invoke import (
    EndpointRef,
    InvokeError,
    describe_client_error,
    endpoint_ref,
    format_body,
    guess_content_type,
)

READY_BODY: dict[str, Any] = {
    "metadata": {"name": "emb", "namespace": "ml"},
    "spec": {"aws": {"region": "eu-west-1"}},
    "status": {
        "endpointName": "ml-emb",
        "phase": "InService",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "EndpointInService", "message": ""},
            {"type": "Reconciling", "status": "False", "reason": "EndpointInService", "message": ""},
        ],
    },
}


def _body(**status: Any) -> dict[str, Any]:
    body = copy.deepcopy(READY_BODY)
    body["status"].update(status)
    return body


def _ready(status: str, reason: str, message: str = "") -> list[dict[str, str]]:
    return [{"type": "Ready", "status": status, "reason": reason, "message": message}]


def test_a_ready_resource_names_its_endpoint_and_region() -> None:
    assert endpoint_ref(READY_BODY) == EndpointRef("ml/emb", "ml-emb", "eu-west-1")


def test_region_defaults_like_the_api() -> None:
    body = _body()
    del body["spec"]["aws"]
    assert endpoint_ref(body).region == "us-east-1"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {"conditions": _ready("False", "Creating", "endpoint is Creating on ml-emb-1"), "phase": "Creating"},
            "DjlEndpoint ml/emb is not Ready (Ready=False, reason Creating: endpoint is Creating on ml-emb-1; "
            "phase Creating). Wait with: kubectl wait --for=condition=Ready djlendpoint/emb -n ml",
        ),
        (
            {"conditions": _ready("False", "EndpointFailed", "CUDA out of memory"), "phase": "Failed"},
            "is not Ready (Ready=False, reason EndpointFailed: CUDA out of memory; phase Failed)",
        ),
        (
            {"conditions": [], "phase": None},
            "is not Ready (the operator has not reported on it yet (is it running and watching this namespace?))",
        ),
        (
            {"conditions": _ready("True", "EndpointInService"), "endpointName": None},
            "DjlEndpoint ml/emb has no status.endpointName: the endpoint was not created yet",
        ),
    ],
)
def test_unusable_resources_say_why(status: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvokeError) as info:
        endpoint_ref(_body(**status))
    assert expected in str(info.value)


def test_allow_not_ready_still_needs_an_endpoint() -> None:
    updating = _body(conditions=_ready("False", "Updating"), phase="Updating")
    assert endpoint_ref(updating, allow_not_ready=True).endpoint_name == "ml-emb"
    with pytest.raises(InvokeError, match=r"has no status\.endpointName"):
        endpoint_ref(_body(conditions=[], endpointName=None), allow_not_ready=True)


@pytest.mark.parametrize(
    ("payload", "file", "expected"),
    [
        (b'{"inputs": "hi"}', None, "application/json"),
        (b'["a", "b"]', "x.txt", "application/json"),  # JSON wins over the suffix
        (b"hello world", None, "text/plain"),
        (b"a,b\n1,2\n", "data.csv", "text/csv"),
        (b"hello", "-", "text/plain"),
        (b"\xff\xfe", "blob.unknownsuffix", "text/plain"),
    ],
)
def test_guess_content_type(payload: bytes, file: str | None, expected: str) -> None:
    assert guess_content_type(payload, file) == expected


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"[0.5, -1.25, 3]", "application/json", b"[0.5, -1.25, 3]\n"),  # a vector stays on one line
        (
            b'{"a":[[1,2],[3,4]],"b":{"c":"d"}}',
            "application/json; charset=utf-8",
            b'{\n  "a": [\n    [1, 2],\n    [3, 4]\n  ],\n  "b": {\n    "c": "d"\n  }\n}\n',
        ),
        (b'[{"label":"POSITIVE"}]', "application/vnd+json", b'[\n  {\n    "label": "POSITIVE"\n  }\n]\n'),
        (b"{}", "application/json", b"{}\n"),
        (b"not json", "application/json", b"not json\n"),  # mislabelled: shown unchanged
        (b"plain text\n", "text/plain", b"plain text\n"),
        (b"", "text/plain", b""),
        ('"caf\u00e9"'.encode(), "application/json", '"caf\u00e9"\n'.encode()),
    ],
)
def test_format_body(body: bytes, content_type: str, expected: bytes) -> None:
    assert format_body(body, content_type) == expected


REF = EndpointRef("ml/emb", "ml-emb", "eu-west-1")


def test_model_errors_show_the_models_own_status_and_message() -> None:
    error = ClientError(
        {
            "Error": {"Code": "ModelError", "Message": "Received client error (415) from primary ..."},
            "OriginalStatusCode": 415,
            "OriginalMessage": "unsupported content type 'x/y'",
            "LogStreamArn": "arn:aws:logs:eu-west-1:1:log-group:/aws/sagemaker/Endpoints/ml-emb",
        },
        "InvokeEndpoint",
    )
    assert describe_client_error(REF, error) == (
        "ModelError from endpoint ml-emb: the model answered 415: unsupported content type 'x/y'\n"
        "(logs: arn:aws:logs:eu-west-1:1:log-group:/aws/sagemaker/Endpoints/ml-emb)"
    )


def test_other_aws_errors_show_code_and_message() -> None:
    error = ClientError(
        {"Error": {"Code": "ValidationError", "Message": "Endpoint ml-emb of account 1 not found."}}, "InvokeEndpoint"
    )
    assert describe_client_error(REF, error) == (
        "InvokeEndpoint on ml-emb (eu-west-1) failed: ValidationError: Endpoint ml-emb of account 1 not found."
    )
