"""AWS event-stream encoding (``application/vnd.amazon.eventstream``), the framing of
InvokeEndpointWithResponseStream's response body.

Each message (AWS SDK docs, "Event stream encoding"; botocore's ``eventstream.py``
parses exactly this): a 12-byte prelude (total length, headers length, both
big-endian uint32, then the CRC32 of those 8 bytes), the headers (name length as
one byte, the name, the value type 7 = string, the value length as a big-endian
uint16, the value), the payload, and the CRC32 of everything before it.

SageMaker's events (botocore's sagemaker-runtime model, ``ResponseStream``):
``PayloadPart`` carries the container's bytes as they arrive (its ``Bytes`` member
is the event payload); ``ModelStreamError`` is an exception event with a JSON
payload ``{"Message", "ErrorCode"}``, sent when the stream breaks after it began.
"""

from __future__ import annotations

import json
import struct
import zlib

_STRING = 7


def _headers(headers: dict[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def message(headers: dict[str, str], payload: bytes) -> bytes:
    """One encoded event-stream message."""
    encoded = _headers(headers)
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + encoded + payload
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def payload_part(data: bytes) -> bytes:
    return message(
        {":event-type": "PayloadPart", ":content-type": "application/octet-stream", ":message-type": "event"},
        data,
    )


def model_stream_error(text: str, error_code: str = "StreamBroken") -> bytes:
    """ModelStreamError (error codes the API reference names: ModelInvocationTimeExceeded, StreamBroken)."""
    return message(
        {":exception-type": "ModelStreamError", ":content-type": "application/json", ":message-type": "exception"},
        json.dumps({"Message": text, "ErrorCode": error_code}).encode(),
    )
