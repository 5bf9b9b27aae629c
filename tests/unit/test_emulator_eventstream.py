"""The emulator's event-stream framing, read back by botocore's own parser and its
sagemaker-runtime model (what stock boto3 does with InvokeEndpointWithResponseStream)."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.eventstream import ChecksumMismatch, EventStream, EventStreamBuffer
from botocore.exceptions import EventStreamError
from botocore.parsers import EventStreamJSONParser

from djl_operator_kit.emulator import eventstream


class _Raw:
    """A urllib3-like body that hands the bytes over in small, frame-splitting pieces."""

    def __init__(self, data: bytes, piece: int = 7) -> None:
        self.data, self.piece = data, piece

    def stream(self):  # type: ignore[no-untyped-def]
        for i in range(0, len(self.data), self.piece):
            yield self.data[i : i + self.piece]

    def close(self) -> None:
        pass


def _events(data: bytes) -> EventStream:
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    shape = model.operation_model("InvokeEndpointWithResponseStream").output_shape.members["Body"]
    return EventStream(_Raw(data), shape, EventStreamJSONParser(), "InvokeEndpointWithResponseStream")


def test_payload_parts_parse_as_boto3_reads_them() -> None:
    data = eventstream.payload_part(b'{"token": 1}\n') + eventstream.payload_part(b"") + eventstream.payload_part(b"x")
    assert [e["PayloadPart"]["Bytes"] for e in _events(data)] == [b'{"token": 1}\n', b"", b"x"]


def test_model_stream_error_is_raised_by_boto3() -> None:
    data = eventstream.payload_part(b"a") + eventstream.model_stream_error("broke", "StreamBroken")
    stream = iter(_events(data))
    assert next(stream)["PayloadPart"]["Bytes"] == b"a"
    with pytest.raises(EventStreamError) as caught:
        next(stream)
    assert caught.value.response["Error"]["Code"] == "ModelStreamError"
    assert caught.value.response["Error"]["Message"] == "broke"


def test_prelude_and_message_checksums_are_checked() -> None:
    message = bytearray(eventstream.payload_part(b"abc"))
    buffer = EventStreamBuffer()
    buffer.add_data(bytes(message))
    (parsed,) = list(buffer)
    assert parsed.payload == b"abc" and parsed.headers[":event-type"] == "PayloadPart"
    message[-6] ^= 0xFF  # corrupt the payload: the message CRC no longer matches
    corrupt = EventStreamBuffer()
    corrupt.add_data(bytes(message))
    with pytest.raises(ChecksumMismatch):
        list(corrupt)
