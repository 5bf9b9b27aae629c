"""The CBOR subset the Smithy RPC v2 CBOR protocol uses (RFC 8949), both ways.

botocore speaks ``smithy-rpc-v2-cbor`` to services whose model lists it first (CloudWatch
does in recent botocore), so the emulator reads requests and writes responses in it.
The protocol's data items are: unsigned and negative integers, byte and text strings
(definite or indefinite length), arrays, maps, floats (half, single, double), true,
false, null, undefined, and tag 1 (epoch-seconds timestamps)
(https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html).
"""

from __future__ import annotations

import math
import struct
from typing import Any


class CborError(ValueError):
    """The bytes are not the CBOR data the protocol allows."""


class Timestamp(float):
    """Seconds since the epoch, encoded as tag 1 (what Smithy's timestamp shapes use)."""


_BREAK = 0xFF


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise CborError("truncated CBOR data")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def peek(self) -> int:
        if self.pos >= len(self.data):
            raise CborError("truncated CBOR data")
        return self.data[self.pos]


def _argument(reader: _Reader, info: int) -> int | None:
    """The integer argument of an initial byte; None for indefinite length (31)."""
    if info < 24:
        return info
    sizes = {24: 1, 25: 2, 26: 4, 27: 8}
    if info in sizes:
        return int.from_bytes(reader.take(sizes[info]), "big")
    if info == 31:
        return None
    raise CborError(f"reserved additional information {info}")


def _item(reader: _Reader) -> Any:
    initial = reader.take(1)[0]
    major, info = initial >> 5, initial & 0x1F
    if major == 7:
        return _simple(reader, info)
    arg = _argument(reader, info)
    if major == 0:
        if arg is None:
            raise CborError("an integer cannot have indefinite length")
        return arg
    if major == 1:
        if arg is None:
            raise CborError("an integer cannot have indefinite length")
        return -1 - arg
    if major in (2, 3):
        raw = _string(reader, major, arg)
        return raw if major == 2 else raw.decode("utf-8")
    if major == 4:
        if arg is None:
            items = []
            while reader.peek() != _BREAK:
                items.append(_item(reader))
            reader.take(1)
            return items
        return [_item(reader) for _ in range(arg)]
    if major == 5:
        out: dict[Any, Any] = {}
        if arg is None:
            while reader.peek() != _BREAK:
                key = _item(reader)
                out[key] = _item(reader)
            reader.take(1)
            return out
        for _ in range(arg):
            key = _item(reader)
            out[key] = _item(reader)
        return out
    # major 6: tags; only tag 1 (epoch seconds) is part of the protocol
    value = _item(reader)
    if arg != 1 or not isinstance(value, (int, float)) or isinstance(value, bool):
        raise CborError(f"unsupported CBOR tag {arg}")
    return Timestamp(value)


def _string(reader: _Reader, major: int, arg: int | None) -> bytes:
    if arg is not None:
        return reader.take(arg)
    chunks = []
    while reader.peek() != _BREAK:
        initial = reader.take(1)[0]
        if initial >> 5 != major:
            raise CborError("an indefinite-length string chunk of another type")
        length = _argument(reader, initial & 0x1F)
        if length is None:
            raise CborError("nested indefinite-length string")
        chunks.append(reader.take(length))
    reader.take(1)
    return b"".join(chunks)


def _simple(reader: _Reader, info: int) -> Any:
    if info == 20:
        return False
    if info == 21:
        return True
    if info in (22, 23):
        return None  # null, undefined
    if info == 25:
        return struct.unpack(">e", reader.take(2))[0]
    if info == 26:
        return struct.unpack(">f", reader.take(4))[0]
    if info == 27:
        return struct.unpack(">d", reader.take(8))[0]
    raise CborError(f"unsupported CBOR simple value {info}")


def loads(data: bytes) -> Any:
    """One CBOR data item (the whole body); CborError if malformed or followed by more bytes."""
    reader = _Reader(data)
    value = _item(reader)
    if reader.pos != len(data):
        raise CborError("trailing bytes after the CBOR data item")
    return value


def _head(major: int, arg: int) -> bytes:
    if arg < 24:
        return bytes([major << 5 | arg])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if arg < 1 << (8 * size):
            return bytes([major << 5 | info]) + arg.to_bytes(size, "big")
    raise CborError(f"integer {arg} does not fit in 64 bits")


def _dump(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, Timestamp):
        out += _head(6, 1)
        _dump(float(value) if not float(value).is_integer() else int(value), out)
    elif isinstance(value, int):
        out += _head(0, value) if value >= 0 else _head(1, -1 - value)
    elif isinstance(value, float):
        if math.isfinite(value) and struct.unpack(">f", struct.pack(">f", value))[0] == value:
            out += b"\xfa" + struct.pack(">f", value)
        else:
            out += b"\xfb" + struct.pack(">d", value)
    elif isinstance(value, str):
        encoded = value.encode("utf-8")
        out += _head(3, len(encoded)) + encoded
    elif isinstance(value, (bytes, bytearray)):
        out += _head(2, len(value)) + bytes(value)
    elif isinstance(value, (list, tuple)):
        out += _head(4, len(value))
        for item in value:
            _dump(item, out)
    elif isinstance(value, dict):
        out += _head(5, len(value))
        for key, item in value.items():
            _dump(key, out)
            _dump(item, out)
    else:
        raise CborError(f"cannot encode {type(value).__name__} as CBOR")


def dumps(value: Any) -> bytes:
    out = bytearray()
    _dump(value, out)
    return bytes(out)
