"""DJL Serving's Python-engine protocol, seen from the host side.

How a request becomes an ``Input``, how several become one batched ``Input``
(``batch_size`` plus ``batch_NNN.``-prefixed properties and content, as DJL's
``PyPredictor`` builds it), and how the handler's ``Output`` becomes one HTTP
response per caller. Pure functions over duck-typed Input/Output objects, so
they work with the real ``djl_python`` classes and with ``djl_compat``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

# Keys of a batched Output's content: batch_<index>.<key> (DJL's BATCH_PATTERN).
BATCH_KEY = re.compile(r"batch_(\d+)\.(.*)")


@dataclass(frozen=True)
class Response:
    """One caller's answer."""

    status: int
    body: bytes
    content_type: str | None
    # A streamed answer: sent chunk by chunk (HTTP chunked encoding) instead of ``body``.
    chunks: Iterator[bytes] | None = None

    @classmethod
    def error(cls, status: int, error: str, message: str | None = None) -> Response:
        """A DJL-style JSON error body ``{"code", "message", "error"}``."""
        phrase = message or HTTPStatus(status).phrase
        body = json.dumps({"code": status, "message": phrase, "error": error}).encode()
        return cls(status, body, "application/json")


def _batch_prefix(index: int) -> str:
    return f"batch_{index:03d}."


def new_input(input_cls: type, headers: Iterable[tuple[str, str]], body: bytes) -> Any:
    """A request as DJL passes it: HTTP headers as properties, the body under ``data``."""
    request = input_cls()
    for name, value in headers:
        request.properties[name] = value
    request.content.add("data", bytearray(body))
    return request


def build_batch(input_cls: type, inputs: list[Any]) -> Any:
    """One Input for several requests; ``get_batches()`` on it gives them back."""
    batch = input_cls()
    batch.properties["batch_size"] = str(len(inputs))
    for index, request in enumerate(inputs):
        prefix = _batch_prefix(index)
        for name, value in request.properties.items():
            batch.properties[prefix + name] = value
        for i in range(request.content.size()):
            key = request.content.key_at(i)
            batch.content.add(prefix + (key if key is not None else "data"), request.content.value_at(i))
    return batch


def _property(properties: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((str(v) for k, v in properties.items() if k.lower() == wanted), None)


def _body(output: Any) -> bytes:
    """The ``data`` entry, else the first one (DJL's Output.getData())."""
    content = output.content
    if content.is_empty():
        return b""
    value = content.get("data")
    return bytes(value if value is not None else content.value_at(0))


def to_response(output: Any) -> Response:
    """A single (unbatched) Output; ``None`` is DJL's empty 200."""
    if output is None:
        return Response(HTTPStatus.OK, b"", None)
    return Response(int(output.code), _body(output), _property(output.properties, "content-type"))


def split_batch_output(output: Any, size: int) -> list[Response]:
    """Give each of ``size`` callers its part of a batched Output, as DJL does:
    a status >= 300 goes to everyone; otherwise content ``batch_NNN.<key>`` goes to
    caller NNN. Extension: a ``batch_NNN.code`` property sets that caller's status
    (the model template uses it for a bad request inside a good batch)."""
    if output is None:
        return [Response.error(HTTPStatus.INTERNAL_SERVER_ERROR, "handler returned no output for a batch")] * size
    if int(output.code) >= 300:
        return [to_response(output)] * size
    content = output.content
    if content.size() != size:
        error = f"Batch output size mismatch, expected: {size}, actual: {content.size()}"
        return [Response.error(HTTPStatus.INTERNAL_SERVER_ERROR, error)] * size
    bodies: dict[int, bytes] = {}
    for i in range(size):
        key = content.key_at(i)
        match = BATCH_KEY.fullmatch(str(key))
        if match is None or int(match.group(1)) >= size:
            error = f"Unexpected batch output key: {key}"
            return [Response.error(HTTPStatus.INTERNAL_SERVER_ERROR, error)] * size
        bodies[int(match.group(1))] = bytes(content.value_at(i))
    content_type = _property(output.properties, "content-type")
    responses = []
    for index in range(size):
        code = _property(output.properties, _batch_prefix(index) + "code")
        status = int(code) if code and code.isdigit() else int(output.code)
        responses.append(Response(status, bodies.get(index, b""), content_type))
    return responses


def invoke(handle: Any, input_cls: type, requests: list[Any]) -> list[Response]:
    """One handler call for ``requests``: alone as they are, several as one batch."""
    try:
        if len(requests) == 1:
            return [to_response(handle(requests[0]))]
        return split_batch_output(handle(build_batch(input_cls, requests)), len(requests))
    except Exception as exc:  # a raising handler fails this call, not the server
        error = Response.error(HTTPStatus.INTERNAL_SERVER_ERROR, f"handler raised {type(exc).__name__}: {exc}")
        return [error] * len(requests)
