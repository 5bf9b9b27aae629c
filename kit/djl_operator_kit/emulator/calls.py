"""Call accounting: every AWS call the emulator answered, for tests and benchmarks to count."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Call:
    service: str  # "sagemaker", "sagemaker-runtime", "s3", "resourcegroupstaggingapi" or "sts" (boto3's names)
    operation: str  # e.g. "CreateEndpoint", "PutObject"
    resource: str | None  # the name/ARN/bucket[/key] the call was about
    error_code: str | None  # None on success
    bytes: int = 0  # request payload bytes (what was uploaded)
    bytes_out: int = 0  # response payload bytes (what was downloaded)
    time: float = 0.0  # epoch seconds when the call was answered
    # The SigV4 access key id that signed the request (who called), None when unsigned.
    principal: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Call:
        return cls(**data)


def access_key_id(authorization: str | None) -> str | None:
    """The access key id in a SigV4 ``Authorization`` header (``Credential=AKID/date/region/svc/aws4_request``).

    Lets tests tell apart whose calls these were (the operator's credentials vs. the test's own).
    """
    if not authorization:
        return None
    _, found, rest = authorization.partition("Credential=")
    if not found:
        return None
    key = rest.split("/", 1)[0].strip()
    return key or None


def credential_region(authorization: str | None) -> str | None:
    """The region of a SigV4 credential scope (``Credential=AKID/20260101/us-west-2/tagging/aws4_request``).

    It is the region the client signed for, i.e. the regional endpoint it believes it is calling;
    None when the request is unsigned or the header is not SigV4."""
    if not authorization:
        return None
    _, found, rest = authorization.partition("Credential=")
    if not found:
        return None
    scope = rest.split(",", 1)[0].strip().split("/")
    return scope[2] if len(scope) == 5 and scope[2] else None


class CallLog:
    """Thread-safe append-only log; filters return copies so callers never race the server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        # Whole requests (line, headers, body), only when asked for: a test that must show a secret
        # never reached AWS greps every byte the emulator was sent, not just what the call log keeps.
        self._keep_requests = False
        self._requests: list[bytes] = []

    def keep_requests(self, keep: bool = True) -> None:
        with self._lock:
            self._keep_requests = keep

    def raw(self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        with self._lock:
            if not self._keep_requests:
                return
        head = f"{method} {target}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        with self._lock:
            self._requests.append(head.encode("utf-8", "replace") + body)

    def wants_requests(self) -> bool:
        with self._lock:
            return self._keep_requests

    def requests(self) -> list[bytes]:
        """Every request kept since :meth:`keep_requests`, as sent (line, headers, body)."""
        with self._lock:
            return list(self._requests)

    def record(
        self,
        service: str,
        operation: str,
        resource: str | None,
        error_code: str | None,
        bytes_in: int = 0,
        bytes_out: int = 0,
        principal: str | None = None,
    ) -> Call:
        call = Call(service, operation, resource, error_code, bytes_in, bytes_out, time.time(), principal)
        with self._lock:
            self._calls.append(call)
        return call

    def calls(self, service: str | None = None, operation: str | None = None) -> list[Call]:
        with self._lock:
            snapshot = list(self._calls)
        return [
            c
            for c in snapshot
            if (service is None or c.service == service) and (operation is None or c.operation == operation)
        ]

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._requests.clear()
