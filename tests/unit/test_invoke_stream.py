"""`djl-operator invoke --messages/--stream`: the request bodies it builds and how it prints a stream."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from djl_operator import invoke

REF = invoke.EndpointRef("default/llm", "default-llm", "us-east-1")


def test_messages_as_text_or_a_list() -> None:
    assert json.loads(invoke.messages_payload("hi there", 16)) == {
        "messages": [{"role": "user", "content": "hi there"}],
        "max_tokens": 16,
    }
    listed = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert json.loads(invoke.messages_payload(json.dumps(listed), None)) == {"messages": listed}


@pytest.mark.parametrize("bad", ["", "  ", "[]", '[{"role": "user"}]', "[1]"])
def test_bad_messages_are_refused(bad: str) -> None:
    with pytest.raises(invoke.InvokeError, match="--messages"):
        invoke.messages_payload(bad, None)


def test_stream_flag_goes_into_the_json_body() -> None:
    assert json.loads(invoke.streaming_payload(b'{"inputs": "a"}')) == {"inputs": "a", "stream": True}
    with pytest.raises(invoke.InvokeError, match="--stream needs a JSON object"):
        invoke.streaming_payload(b"plain text")


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b'{"token": {"id": 1, "text": " fox", "log_prob": -1.0}, "generated_text": null}', " fox"),
        (b'{"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hi"}}]}', "hi"),
        (b'{"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}}]}', ""),
        (b"not json", None),
        (b"[1]", None),
    ],
)
def test_token_text(line: bytes, text: str | None) -> None:
    assert invoke.token_text(line) == text


class _StreamingClient:
    """invoke_endpoint_with_response_stream as boto3 answers it: PayloadPart events, split anywhere."""

    def __init__(self, parts: list[bytes], content_type: str = "application/jsonlines") -> None:
        self.parts, self.content_type = parts, content_type
        self.kwargs: dict[str, Any] = {}

    def invoke_endpoint_with_response_stream(self, **kwargs: Any) -> dict[str, Any]:
        self.kwargs = kwargs
        return {"ContentType": self.content_type, "Body": iter({"PayloadPart": {"Bytes": p}} for p in self.parts)}


def test_invoke_stream_prints_tokens_across_split_events() -> None:
    lines = [
        json.dumps({"choices": [{"delta": {"content": word}}]}).encode() + b"\n" for word in ("The", " cat", " sat")
    ]
    stream = b"".join(lines)
    parts = [stream[:7], stream[7:50], stream[50:]]  # events do not follow line boundaries
    client = _StreamingClient(parts)
    out = io.BytesIO()
    assert invoke.invoke_stream(REF, b'{"messages": [], "stream": true}', "application/json", out, client=client) == 3
    assert out.getvalue() == b"The cat sat\n"
    assert client.kwargs["EndpointName"] == "default-llm"


def test_invoke_stream_passes_other_bodies_through() -> None:
    out = io.BytesIO()
    invoke.invoke_stream(REF, b"{}", "application/json", out, client=_StreamingClient([b"ab", b"c"], "text/plain"))
    assert out.getvalue() == b"abc\n"
