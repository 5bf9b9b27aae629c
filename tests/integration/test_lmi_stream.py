"""The LLM path locally: an LMI-style artifact (no model.py) on a tiny causal LM, behind the
emulator; stock boto3 reads InvokeEndpointWithResponseStream's event stream."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from djl_operator.artifacts.package import build_tarball
from djl_operator_kit.emulator import Emulator
from tests.plugins.emulator import config, model, upload
from tests.plugins.models import needs_torch

pytestmark = needs_torch


@pytest.fixture(scope="module")
def llm_emulator() -> Iterator[Emulator]:
    """One emulator (and so one model server: starting one costs seconds of CPU) for the module."""
    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def llm(llm_emulator: Emulator, tiny_model_dir: Callable[[str], Path]) -> Any:
    emulator = llm_emulator
    weights = tiny_model_dir("text-generation")
    files = {
        "serving.properties": b"engine=Python\noption.model_id=weights\noption.task=text-generation\n"
        b"option.max_rolling_batch_size=8\n",
        **{f"weights/{p.name}": p.read_bytes() for p in weights.iterdir() if p.is_file()},
    }
    sm = emulator.client("sagemaker")
    url = upload(emulator.client("s3"), "models", "llm/model.tar.gz", build_tarball(files))
    model(sm, "llm", url)
    config(sm, "llm", "llm")
    sm.create_endpoint(EndpointName="llm", EndpointConfigName="llm")
    return emulator.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1}, read_timeout=120))


def _stream(runtime: Any, body: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    answer = runtime.invoke_endpoint_with_response_stream(
        EndpointName="llm", Body=json.dumps(body).encode(), ContentType="application/json"
    )
    return answer, [event["PayloadPart"]["Bytes"] for event in answer["Body"]]


def test_chat_streams_chunks_through_boto3(llm_emulator: Emulator, llm: Any) -> None:
    before = len(llm_emulator.calls(service="sagemaker-runtime"))
    answer, parts = _stream(
        llm, {"messages": [{"role": "user", "content": "hello world"}], "max_tokens": 6, "stream": True}
    )
    assert answer["ContentType"] == "application/jsonlines"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert len(parts) > 1, "the tokens came in one piece: nothing was streamed"
    lines = [json.loads(line) for line in b"".join(parts).splitlines()]
    assert len(lines) == 6
    assert {line["object"] for line in lines} == {"chat.completion.chunk"}
    assert lines[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [line["choices"][0]["finish_reason"] for line in lines] == [None] * 5 + ["length"]
    calls = llm_emulator.calls(service="sagemaker-runtime")[before:]
    assert [(c.operation, c.error_code) for c in calls] == [("InvokeEndpointWithResponseStream", None)]
    assert calls[0].bytes_out == len(b"".join(parts))


def test_chat_completion_and_generated_text(llm: Any) -> None:
    chat = json.loads(
        llm.invoke_endpoint(
            EndpointName="llm",
            Body=json.dumps({"messages": [{"role": "user", "content": "a cat"}], "max_tokens": 4}),
            ContentType="application/json",
        )["Body"].read()
    )
    assert chat["object"] == "chat.completion"
    assert chat["choices"][0]["message"]["role"] == "assistant"
    assert chat["usage"]["completion_tokens"] == 4
    assert chat["usage"]["total_tokens"] == chat["usage"]["prompt_tokens"] + 4
    generated = json.loads(
        llm.invoke_endpoint(
            EndpointName="llm",
            Body=json.dumps({"inputs": ["the quick", "a cat"], "parameters": {"max_new_tokens": 3}}),
            ContentType="application/json",
        )["Body"].read()
    )
    assert [set(g) for g in generated] == [{"generated_text"}] * 2


def test_inputs_stream_ends_with_the_whole_text(llm: Any) -> None:
    _, parts = _stream(llm, {"inputs": "the quick", "parameters": {"max_new_tokens": 5}, "stream": True})
    lines = [json.loads(line) for line in b"".join(parts).splitlines()]
    assert len(lines) == 5
    assert all(line["generated_text"] is None for line in lines[:-1])
    assert lines[-1]["generated_text"] == "".join(line["token"]["text"] for line in lines)


def test_a_bad_request_is_a_model_error_before_the_stream(llm: Any) -> None:
    with pytest.raises(ClientError) as info:
        _stream(llm, {"inputs": "x", "parameters": {"bogus": 1}, "stream": True})
    assert info.value.response["Error"]["Code"] == "ModelError"
    assert info.value.response["OriginalStatusCode"] == 400
    assert "unsupported parameter(s): bogus" in info.value.response["OriginalMessage"]
