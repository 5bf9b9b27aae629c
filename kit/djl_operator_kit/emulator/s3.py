"""S3: moto's server, wrapped so every call is counted and scoped to the emulator's account.

The WSGI middleware in front of moto's app

* pins each request to this emulator's account (``x-moto-account-id``), so two
  emulators in one process see their own ``ListBuckets`` and a stopped emulator's
  objects can be wiped without touching the other's (bucket *names* stay global,
  as in AWS);
* records ``(operation, bucket/key, error code, bytes)`` for every client call;
  the emulator's own reads (checking and fetching model data) carry
  ``x-djl-emulator-internal`` and are not counted.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from botocore.config import Config
from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import ThreadedWSGIServer

from .calls import CallLog, access_key_id
from .clients import make_client
from .connections import ConnectionTrackingMixin
from .faults import Faults
from .s3_requests import s3_operation

INTERNAL_HEADER = "x-djl-emulator-internal"
_ERROR_CODE = re.compile(rb"<Code>([^<]+)</Code>")

StartResponse = Callable[..., Any]


class _QuietHandler(MotoRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Tests and the demo read call accounting instead of an access log."""


class _TrackingWSGIServer(ConnectionTrackingMixin, ThreadedWSGIServer):
    pass


# S3 spells the injected faults its own way (REST-XML codes and statuses).
_S3_FAULTS = {
    "ThrottlingException": ("SlowDown", "Please reduce your request rate.", 503),
    "AccessDeniedException": ("AccessDenied", "Access Denied", 403),
    "InternalFailure": ("InternalError", "We encountered an internal error. Please try again.", 500),
}


def _s3_error(code: str, message: str, resource: str, request_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><Resource>/{resource}</Resource>"
        f"<RequestId>{request_id}</RequestId></Error>"
    ).encode()


_DELETED = re.compile(rb"<Deleted>.*?</Deleted>", re.DOTALL)
_QUIET = re.compile(rb"<Quiet>\s*true\s*</Quiet>", re.IGNORECASE)


def _quiet_delete(environ: dict[str, Any]) -> bool:
    """Whether a DeleteObjects request asks for quiet mode; the body is read and put back for moto."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return bool(_QUIET.search(body))


def _request_ids() -> list[tuple[str, str]]:
    """S3 answers every request, HEAD and errors included, with x-amz-request-id and x-amz-id-2
    (S3 API reference, "Common Response Headers"); SDKs report them with every error."""
    request_id = uuid.uuid4().hex[:16].upper()
    host_id = base64.b64encode(hashlib.sha256(request_id.encode()).digest()).decode()
    return [("x-amz-request-id", request_id), ("x-amz-id-2", host_id)]


class AccountingMiddleware:
    def __init__(self, app: Any, account_id: str, calls: CallLog, faults: Faults | None = None) -> None:
        self.app, self.account_id, self.calls, self.faults = app, account_id, calls, faults

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_id
        if environ.pop("HTTP_" + INTERNAL_HEADER.upper().replace("-", "_"), None):
            result: Iterable[bytes] = self.app(environ, start_response)
            return result
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if self.calls.wants_requests():
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(raw)  # put back for moto
            target = environ.get("PATH_INFO", "/") + (
                "?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else ""
            )
            self.calls.raw(environ["REQUEST_METHOD"], target, headers.items(), raw)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        operation, resource = s3_operation(environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/"), query, headers)
        sent = headers.get("x-amz-decoded-content-length") or environ.get("CONTENT_LENGTH") or 0
        principal = access_key_id(headers.get("authorization"))
        injected = (
            self.faults.request_error(operation, resource or "", self.account_id, control_plane=False)
            if self.faults
            else None
        )
        if injected is not None:
            fault_code, message, http_status = _S3_FAULTS.get(
                injected.code, (injected.code, injected.message, injected.status)
            )
            ids = _request_ids()
            reply = _s3_error(fault_code, message, resource or "", ids[0][1])
            headers_out = [("Content-Type", "application/xml"), ("Content-Length", str(len(reply))), *ids]
            start_response(f"{http_status} {fault_code}", headers_out)
            self.calls.record("s3", operation, resource, fault_code, 0, len(reply), principal)
            return [reply]
        quiet = operation == "DeleteObjects" and _quiet_delete(environ)
        started: list[tuple[str, list[tuple[str, str]], Any]] = []

        def capture(status_line: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started.append((status_line, response_headers, exc_info))
            return lambda data: None  # moto returns its body; the legacy write() is never used

        body_iter = self.app(environ, capture)
        try:
            # moto builds whole responses in memory anyway; buffering lets us count, parse errors
            # and correct the answer before any of it leaves.
            body = b"".join(body_iter)
        finally:
            close = getattr(body_iter, "close", None)
            if close:
                close()
        status_line, response_headers, exc_info = started[0] if started else ("500 Internal Server Error", [], None)
        code = int(status_line.split(" ", 1)[0])
        if quiet and code == 200:
            # "In quiet mode the response includes only keys where the delete operation encountered
            # an error" (S3 API reference, DeleteObjects); moto lists every key as Deleted.
            body = _DELETED.sub(b"", body)
            response_headers = [
                (n, str(len(body)) if n.lower() == "content-length" else v) for n, v in response_headers
            ]
        present = {name.lower() for name, _ in response_headers}
        missing = [(n, v) for n, v in _request_ids() if n not in present]
        start_response(status_line, [*response_headers, *missing], exc_info)
        error = None
        if code >= 300:
            match = _ERROR_CODE.search(body)
            error = match.group(1).decode() if match else str(code)
        self.calls.record("s3", operation, resource, error, int(sent), len(body), principal)
        return [body]


class AccountedMotoServer(ThreadedMotoServer):
    """moto's ThreadedMotoServer on loopback, its app wrapped in ``middleware`` (call accounting,
    account scoping, faults), with a stop that cuts open connections. S3 and the SQS/EventBridge
    side port are both one of these."""

    middleware: Callable[..., Any]  # (moto app, account_id, calls, faults) -> WSGI app

    def __init__(
        self, account_id: str, calls: CallLog, host: str = "127.0.0.1", port: int = 0, faults: Faults | None = None
    ) -> None:
        super().__init__(ip_address=host, port=port, verbose=False)
        self.account_id, self.calls, self.faults = account_id, calls, faults
        self._tracking: _TrackingWSGIServer | None = None
        self.app: Any = None  # the middleware, once the server runs

    def _server_entry(self) -> None:  # overrides ThreadedMotoServer's to wrap the app
        app = type(self).middleware(
            DomainDispatcherApplication(create_backend_app), self.account_id, self.calls, self.faults
        )
        self.app = app
        self._tracking = _TrackingWSGIServer(self._ip_address, self._port, app, handler=_QuietHandler)
        self._server = self._tracking
        self._server_ready_event.set()
        self._tracking.serve_forever(poll_interval=0.05)

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._tracking is not None:
            self._tracking.close_connections()
        super().stop()


class S3Server(AccountedMotoServer):
    """The emulator's S3: moto's, with accounting, account scoping and a clean stop."""

    middleware = AccountingMiddleware

    def __init__(
        self,
        account_id: str,
        region: str,
        calls: CallLog,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
    ):
        super().__init__(account_id, calls, host, port, faults)
        self.region = region
        self._internal: Any = None
        self._internal_lock = threading.Lock()

    def stop(self) -> None:
        with self._internal_lock:
            if self._internal is not None:
                self._internal.close()
                self._internal = None
        super().stop()
        self.wipe()

    def wipe(self) -> None:
        """Forget every bucket and object of this emulator's account (moto state is per process)."""
        from moto.s3.models import s3_backends

        if self.account_id in s3_backends:
            for backend in list(s3_backends[self.account_id].values()):
                backend.reset()

    # -- the emulator's own reads, not counted --

    def _client(self) -> Any:
        with self._internal_lock:
            if self._internal is None:
                client = make_client(
                    "s3",
                    endpoint_url=self.url,
                    region_name=self.region,
                    aws_access_key_id="emulator",
                    aws_secret_access_key="emulator",
                    config=Config(retries={"max_attempts": 1}),
                )

                def mark(request: Any, **_: Any) -> None:
                    request.headers[INTERNAL_HEADER] = "1"

                client.meta.events.register("before-sign.s3", mark)
                self._internal = client
            return self._internal

    def exists(self, bucket: str, key: str, prefix: bool = False) -> bool:
        try:
            if prefix:
                listing = self._client().list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
                return bool(listing.get("KeyCount"))
            self._client().head_object(Bucket=bucket, Key=key)
            return True
        except ClientError:
            return False

    def download(self, bucket: str, key: str, dest: Path) -> None:
        self._client().download_file(bucket, key, str(dest))

    def put_objects(self, bucket: str, keys: Iterable[str], body: bytes) -> None:
        """Write objects straight into moto's backend (a test's setup, not counted): a signed PUT
        each costs ~10 ms of CPU, which a test seeding a thousand keys has no reason to pay."""
        from moto.s3.models import s3_backends

        backend = s3_backends[self.account_id]["aws"]
        for key in keys:
            backend.put_object(bucket, key, body)

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under ``prefix`` (an s3:// model id names a folder of weights)."""
        pages = self._client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]
