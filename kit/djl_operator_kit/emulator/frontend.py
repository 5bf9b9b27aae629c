"""The emulator's HTTP front: SageMaker (JSON 1.1), sagemaker-runtime (REST) and the admin API on one port.

Routing:

* ``POST /`` with ``X-Amz-Target: SageMaker.<Operation>`` -> control plane;
* ``POST /`` with ``X-Amz-Target: ResourceGroupsTaggingAPI_20170126.<Operation>`` -> Tagging API;
* ``POST /`` with ``X-Amz-Target: AnyScaleFrontendService.<Operation>`` -> Application Auto Scaling;
* ``POST /service/GraniteServiceVersion20100801/operation/<Operation>`` (Smithy RPC v2 CBOR) or
  ``POST /`` with ``X-Amz-Target: GraniteServiceVersion20100801.<Operation>`` (JSON 1.0) -> CloudWatch;
* ``POST /`` with a form body ``Action=GetCallerIdentity&Version=2011-06-15`` (or ``GET /?Action=..``)
  -> STS (Query protocol, XML);
* ``POST /endpoints/<name>/invocations`` -> InvokeEndpoint;
* ``POST /endpoints/<name>/invocations-response-stream`` -> InvokeEndpointWithResponseStream
  (an ``application/vnd.amazon.eventstream`` body, sent chunk by chunk);
* ``/_emulator/...`` -> admin API (see the package docstring).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import autoscaling, cbor, cloudwatch, eventstream, sts, tagging, validation
from .calls import access_key_id, credential_region
from .connections import ConnectionTrackingMixin
from .errors import ApiError

if TYPE_CHECKING:
    from .app import Emulator

log = logging.getLogger(__name__)

_JSON_11 = "application/x-amz-json-1.1"
_JSON_10 = "application/x-amz-json-1.0"
_INVOKE_PATH = re.compile(r"^/endpoints/([^/]+)/invocations$")
_STREAM_PATH = re.compile(r"^/endpoints/([^/]+)/invocations-response-stream$")
_FAIL_PATH = re.compile(r"^/_emulator/endpoints/([^/]+)/fail$")
_RPC_V2_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)$")
# Which request member names the resource an operation is about (for call accounting).
_RESOURCE_MEMBERS = ("EndpointName", "EndpointConfigName", "ModelName", "ResourceArn")
_ARN_KIND = {"EndpointName": "endpoint", "EndpointConfigName": "endpoint-config", "ModelName": "model"}
# Admin fault methods callable as POST /_emulator/faults/<name> with JSON keyword arguments.
FAULT_METHODS = ("set", "fail_model_start", "capacity_error", "throttle", "deny", "internal_error", "quota", "clear")
_RUNTIME_LIMIT = 25 * 1024 * 1024  # InvokeEndpoint payload limit


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # A streamed body (event-stream messages), sent with chunked encoding as they come.
    chunks: Iterator[bytes] | None = None


def _json_params(body: bytes) -> dict[str, Any]:
    """A JSON 1.1 request body as the services parse it: an object, else SerializationException."""
    try:
        params = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError("SerializationException", f"Request body is not JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "Request body must be a JSON object.")
    return params


def _json(status: int, payload: Any, content_type: str = "application/json") -> Response:
    return Response(status, json.dumps(payload).encode(), {"Content-Type": content_type})


def _resource(params: dict[str, Any]) -> str | None:
    for member in _RESOURCE_MEMBERS:
        if isinstance(params.get(member), str):
            return str(params[member])
    return None


def _resource_arn(emu: Emulator, params: dict[str, Any]) -> str:
    for member, kind in _ARN_KIND.items():
        if isinstance(params.get(member), str):
            return emu.sagemaker.arn(kind, params[member])
    if isinstance(params.get("ResourceArn"), str):
        return str(params["ResourceArn"])
    return f"arn:aws:sagemaker:{emu.region}:{emu.account_id}:*"


def sagemaker_call(emu: Emulator, target: str, body: bytes, principal: str | None = None) -> Response:
    """One JSON 1.1 control-plane request, faults and validation included, always recorded."""
    operation = target.partition(".")[2] if target.startswith("SageMaker.") else ""
    params: Any = {}
    try:
        if not operation:
            raise ApiError("UnknownOperationException", f"Unknown X-Amz-Target {target!r}.")
        params = _json_params(body)
        if operation not in emu.sagemaker.operations:
            raise ApiError("UnknownOperationException", f"The emulator does not implement SageMaker.{operation}.")
        fault = emu.faults.request_error(operation, _resource_arn(emu, params), emu.account_id)
        if fault is not None:
            raise fault
        validation.validate(operation, params)
        emu.autoscaling.tick()  # scaling moves on the clock every SageMaker reader sees
        result = emu.sagemaker.handle(operation, params)
    except ApiError as err:
        emu.call_log.record(
            "sagemaker", operation or target, _resource(params), err.code, len(body), principal=principal
        )
        payload = {"__type": err.code, "message": err.message, **err.fields}
        return _json(err.status, payload, _JSON_11)
    out = json.dumps(result).encode()
    emu.call_log.record("sagemaker", operation, _resource(params), None, len(body), len(out), principal)
    return Response(200, out, {"Content-Type": _JSON_11})


# The Tagging API's own names for the faults SageMaker calls ThrottlingException and InternalFailure
# (its model declares ThrottledException and InternalServiceException).
_TAGGING_CODES = {"ThrottlingException": "ThrottledException", "InternalFailure": "InternalServiceException"}


def tagging_call(emu: Emulator, operation: str, body: bytes, principal: str | None, region: str | None) -> Response:
    """One Resource Groups Tagging API request (JSON 1.1), faults and validation included, always recorded."""
    try:
        params = _json_params(body)
        if operation not in emu.tagging.operations:
            raise ApiError(
                "UnknownOperationException", f"The emulator does not implement {tagging.TARGET_PREFIX}.{operation}."
            )
        fault = emu.faults.request_error(operation, "", emu.account_id, control_plane=False, action_prefix="tag")
        if fault is not None:
            raise ApiError(_TAGGING_CODES.get(fault.code, fault.code), fault.message, fault.status)
        # Constraint violations are the modeled InvalidParameterException ("A provided parameter
        # value is out of range"), not SageMaker's ValidationException.
        validation.validate(operation, params, tagging.SERVICE, code="InvalidParameterException")
        result = emu.tagging.handle(operation, params, region or emu.region)
    except ApiError as err:
        emu.call_log.record(tagging.SERVICE, operation, None, err.code, len(body), principal=principal)
        # The model's error shapes name their member "Message".
        return _json(err.status, {"__type": err.code, "Message": err.message}, _JSON_11)
    out = json.dumps(result).encode()
    emu.call_log.record(tagging.SERVICE, operation, None, None, len(body), len(out), principal)
    return Response(200, out, {"Content-Type": _JSON_11})


# Application Auto Scaling's model declares InternalServiceException; throttling is AWS's common ThrottlingException.
_AUTOSCALING_CODES = {"InternalFailure": "InternalServiceException"}


def autoscaling_call(emu: Emulator, operation: str, body: bytes, principal: str | None) -> Response:
    """One Application Auto Scaling request (JSON 1.1), faults and validation included, always recorded."""
    params: Any = {}
    try:
        params = _json_params(body)
        if operation not in emu.autoscaling.operations:
            raise ApiError(
                "UnknownOperationException",
                f"The emulator does not implement {autoscaling.TARGET_PREFIX}.{operation}.",
            )
        fault = emu.faults.request_error(
            operation, "*", emu.account_id, control_plane=False, action_prefix="application-autoscaling"
        )
        if fault is not None:
            raise ApiError(_AUTOSCALING_CODES.get(fault.code, fault.code), fault.message, fault.status)
        validation.validate(operation, params, autoscaling.SERVICE)
        result = emu.autoscaling.handle(operation, params)
    except ApiError as err:
        resource = params.get("ResourceId") if isinstance(params, dict) else None
        emu.call_log.record(autoscaling.SERVICE, operation, resource, err.code, len(body), principal=principal)
        # The model's error shapes name their member "Message".
        return _json(err.status, {"__type": err.code, "Message": err.message}, _JSON_11)
    out = json.dumps(result).encode()
    emu.call_log.record(autoscaling.SERVICE, operation, params.get("ResourceId"), None, len(body), len(out), principal)
    return Response(200, out, {"Content-Type": _JSON_11})


# CloudWatch's Query-era codes for the faults (its model: InternalServiceFault is InternalServiceError).
_CLOUDWATCH_CODES = {
    "ThrottlingException": "Throttling",
    "InternalFailure": "InternalServiceError",
    "AccessDeniedException": "AccessDenied",
}


def cloudwatch_call(emu: Emulator, operation: str, body: bytes, principal: str | None, wire: str) -> Response:
    """One CloudWatch request, ``wire`` "cbor" (Smithy RPC v2) or "json" (awsJson1_0): faults and
    validation included, always recorded. Errors carry ``x-amzn-query-error`` (awsQueryCompatible)."""
    params: Any = {}
    try:
        if wire == "cbor":
            try:
                params = cbor.loads(body) if body else {}
            except (cbor.CborError, UnicodeDecodeError) as exc:
                raise ApiError("SerializationException", f"Request body is not CBOR: {exc}") from exc
            if not isinstance(params, dict):
                raise ApiError("SerializationException", "Request body must be a CBOR map.")
        else:
            params = _json_params(body)
        if operation not in emu.cloudwatch.operations:
            raise ApiError(
                "UnknownOperationException", f"The emulator does not implement {cloudwatch.TARGET_PREFIX}.{operation}."
            )
        fault = emu.faults.request_error(operation, "", emu.account_id, control_plane=False, action_prefix="cloudwatch")
        if fault is not None:
            raise ApiError(_CLOUDWATCH_CODES.get(fault.code, fault.code), fault.message, fault.status)
        validation.validate(operation, params, cloudwatch.SERVICE, code="ValidationError")
        result = emu.cloudwatch.handle(operation, params)
    except ApiError as err:
        emu.call_log.record(cloudwatch.SERVICE, operation, None, err.code, len(body), principal=principal)
        payload = {"__type": cloudwatch.error_shape(err.code), "message": err.message}
        side = "Receiver" if err.status >= 500 else "Sender"
        headers = {"x-amzn-query-error": f"{err.code};{side}"}
        if wire == "cbor":
            headers.update({"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"})
            return Response(err.status, cbor.dumps(payload), headers)
        return Response(err.status, json.dumps(payload).encode(), {**headers, "Content-Type": _JSON_10})
    has_output = validation.has_output(operation, cloudwatch.SERVICE)
    if wire == "cbor":
        out = cbor.dumps(result) if has_output else b""
        headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
    else:
        out, headers = json.dumps(result).encode(), {"Content-Type": _JSON_10}
    emu.call_log.record(cloudwatch.SERVICE, operation, None, None, len(body), len(out), principal)
    return Response(200, out, headers)


def json_call(emu: Emulator, target: str, body: bytes, authorization: str | None) -> Response:
    """A JSON 1.0/1.1 request, routed by its ``X-Amz-Target`` prefix."""
    principal = access_key_id(authorization)
    prefix, _, operation = target.partition(".")
    if prefix == cloudwatch.TARGET_PREFIX:
        return cloudwatch_call(emu, operation, body, principal, "json")
    if prefix == tagging.TARGET_PREFIX:
        return tagging_call(emu, operation, body, principal, credential_region(authorization))
    if prefix == autoscaling.TARGET_PREFIX:
        return autoscaling_call(emu, operation, body, principal)
    return sagemaker_call(emu, target, body, principal)


def sts_call(emu: Emulator, body: bytes, query: str, principal: str | None) -> Response:
    """One STS Query-protocol request: form parameters in, XML out, always recorded."""
    request_id = str(uuid.uuid4())
    params = sts.form(body, query)
    operation = params.pop("Action", "")
    try:
        if operation not in sts.OPERATIONS or params.pop("Version", None) != sts.VERSION:
            raise ApiError("InvalidAction", f"Could not find operation {operation} for version {sts.VERSION}")
        # GetCallerIdentity needs no permission, and an explicit deny does not stop it.
        fault = emu.faults.request_error(operation, "", emu.account_id, control_plane=False, deniable=False)
        if fault is not None:
            raise ApiError(sts.FAULT_CODES.get(fault.code, fault.code), fault.message, fault.status)
        validation.validate(operation, params, sts.SERVICE, code="ValidationError")
        result = sts.caller_identity(principal, emu.account_id)
    except ApiError as err:
        emu.call_log.record(sts.SERVICE, operation or "?", None, err.code, len(body), principal=principal)
        return Response(
            err.status, sts.error_xml(err, request_id), {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
        )
    out = sts.result_xml(operation, result, request_id)
    emu.call_log.record(sts.SERVICE, operation, None, None, len(body), len(out), principal)
    return Response(200, out, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id})


def _is_query_protocol(method: str, path: str, query: str, content_type: str) -> bool:
    if path != "/":
        return False
    if method == "POST":
        return content_type.startswith("application/x-www-form-urlencoded")
    return method == "GET" and "Action=" in query


def _runtime_error(err: ApiError) -> Response:
    # rest-json errors: the code travels in x-amzn-ErrorType, modeled members in the body.
    response = _json(err.status, {"message": err.message, **err.fields})
    response.headers["x-amzn-ErrorType"] = err.code
    return response


def invoke_endpoint(
    emu: Emulator, name: str, headers: dict[str, str], body: bytes, principal: str | None = None
) -> Response:
    try:
        arn = emu.sagemaker.arn("endpoint", name)
        fault = emu.faults.request_error("InvokeEndpoint", arn, emu.account_id, control_plane=False)
        if fault is not None:
            raise fault
        problems = validation.violations("InvokeEndpoint", {"EndpointName": name, "Body": ""}, "sagemaker-runtime")
        if len(body) > _RUNTIME_LIMIT:
            problems.append(f"Request body of {len(body)} bytes exceeds the {_RUNTIME_LIMIT} byte limit")
        if problems:
            raise ApiError("ValidationError", "; ".join(problems))
        target = emu.sagemaker.runtime_target(name, headers.get("x-amzn-sagemaker-target-variant"))
        if target is None:
            # What the runtime answers for missing endpoints and for ones not (yet) in service.
            raise ApiError("ValidationError", f"Endpoint {name} of account {emu.account_id} not found.")
        result = emu.runtime.invoke(
            target,
            body,
            headers.get("content-type"),
            headers.get("accept"),
            headers.get("x-amzn-sagemaker-custom-attributes"),
        )
    except ApiError as err:
        emu.call_log.record("sagemaker-runtime", "InvokeEndpoint", name, err.code, len(body), principal=principal)
        return _runtime_error(err)
    emu.call_log.record("sagemaker-runtime", "InvokeEndpoint", name, None, len(body), len(result.body), principal)
    return Response(
        200,
        result.body,
        {"Content-Type": result.content_type, "x-Amzn-Invoked-Production-Variant": target.variant_name},
    )


def invoke_endpoint_stream(
    emu: Emulator, name: str, headers: dict[str, str], body: bytes, principal: str | None = None
) -> Response:
    """InvokeEndpointWithResponseStream: the container's bytes as PayloadPart events.

    As the API reference describes: errors found before the stream starts (validation, a
    missing endpoint, the model answering non-2xx: ModelError) are ordinary error responses;
    once it has started, a failure ends it with a ModelStreamError event (StreamBroken).
    The response's own Content-Type is the event stream; the model's is in
    X-Amzn-SageMaker-Content-Type."""
    operation = "InvokeEndpointWithResponseStream"
    try:
        arn = emu.sagemaker.arn("endpoint", name)
        fault = emu.faults.request_error(operation, arn, emu.account_id, control_plane=False)
        if fault is not None:
            raise fault
        problems = validation.violations(operation, {"EndpointName": name, "Body": ""}, "sagemaker-runtime")
        if len(body) > _RUNTIME_LIMIT:
            problems.append(f"Request body of {len(body)} bytes exceeds the {_RUNTIME_LIMIT} byte limit")
        if problems:
            raise ApiError("ValidationError", "; ".join(problems))
        target = emu.sagemaker.runtime_target(name, headers.get("x-amzn-sagemaker-target-variant"))
        if target is None:
            raise ApiError("ValidationError", f"Endpoint {name} of account {emu.account_id} not found.")
        content_type, parts = emu.runtime.invoke_stream(
            target,
            body,
            headers.get("content-type"),
            headers.get("x-amzn-sagemaker-accept"),
            headers.get("x-amzn-sagemaker-custom-attributes"),
        )
    except ApiError as err:
        emu.call_log.record("sagemaker-runtime", operation, name, err.code, len(body), principal=principal)
        return _runtime_error(err)

    def events() -> Iterator[bytes]:
        sent, error = 0, None
        try:
            for part in parts:
                sent += len(part)
                yield eventstream.payload_part(part)
        except Exception as exc:  # the model server went away mid-stream
            error = "ModelStreamError"
            yield eventstream.model_stream_error(f"The stream from the model broke: {exc}")
        finally:
            emu.call_log.record("sagemaker-runtime", operation, name, error, len(body), sent, principal)

    return Response(
        200,
        headers={
            "Content-Type": "application/vnd.amazon.eventstream",
            "X-Amzn-SageMaker-Content-Type": content_type,
            "x-Amzn-Invoked-Production-Variant": target.variant_name,
        },
        chunks=events(),
    )


def admin(emu: Emulator, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Response:
    try:
        args = json.loads(body) if body else {}
    except ValueError:
        return _json(400, {"error": "admin request body must be JSON"})
    if not isinstance(args, dict):
        return _json(400, {"error": "admin request body must be a JSON object"})
    first = {k: v[0] for k, v in query.items() if v}
    try:
        if path == "/_emulator/health" and method == "GET":
            return _json(200, {"ok": True})
        if path == "/_emulator/env" and method == "GET":
            return _json(200, emu.env)
        if path == "/_emulator/calls":
            if method == "GET":
                calls = emu.calls(service=first.get("service"), operation=first.get("operation"))
                return _json(200, {"calls": [c.to_json() for c in calls]})
            if method == "DELETE":
                emu.reset_calls()
                return _json(200, {})
        if path == "/_emulator/faults":
            if method == "GET":
                return _json(200, emu.faults.snapshot())
            if method == "DELETE":
                emu.faults.clear()
                return _json(200, {})
        if path.startswith("/_emulator/faults/") and method == "POST":
            name = path.rsplit("/", 1)[1]
            if name not in FAULT_METHODS:
                return _json(404, {"error": f"unknown fault {name!r}; one of {', '.join(FAULT_METHODS)}"})
            if name in ("deny", "internal_error"):
                operations = args.get("operations")
                if not isinstance(operations, list) or not operations:
                    return _json(400, {"error": f"{name} needs 'operations': a non-empty list of names"})
                getattr(emu.faults, name)(*operations)
            else:
                getattr(emu.faults, name)(**args)
            return _json(200, emu.faults.snapshot())
        match = _FAIL_PATH.match(path)
        if match and method == "POST":
            reason = args.get("reason")
            if not isinstance(reason, str) or not reason:
                return _json(400, {"error": "'reason' (a non-empty string) is required"})
            emu.force_endpoint_failed(unquote(match.group(1)), reason)
            return _json(200, {})
        if path == "/_emulator/events":  # endpoint state-change events: delivery faults and counts
            if method == "POST":
                emu.events.set_faults(**args)
            if method in ("GET", "POST"):
                return _json(200, emu.events.snapshot())
        if path == "/_emulator/autoscaling/invocation_rate" and method == "POST":
            if not isinstance(args.get("endpoint"), str) or not isinstance(args.get("variant"), str):
                return _json(400, {"error": "'endpoint' and 'variant' (strings) and 'per_minute' are required"})
            emu.autoscaling.set_invocation_rate(args["endpoint"], args["variant"], args.get("per_minute"))
            return _json(200, {})
        if path == "/_emulator/reset" and method == "POST":
            emu.reset()
            return _json(200, {})
    except ApiError as err:
        return _json(404 if "Could not find" in err.message else 400, {"error": err.message})
    except (TypeError, ValueError) as exc:
        return _json(400, {"error": str(exc)})
    return _json(404, {"error": f"no admin route {method} {path}"})


class FrontendServer(ConnectionTrackingMixin, ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, FrontendHandler)


class FrontendHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: boto3 reuses connections
    # Headers and body leave in one segment: unbuffered writes plus Nagle and delayed ACKs
    # would add ~40 ms to every keep-alive call.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: FrontendServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        headers = {"x-amzn-RequestId": str(uuid.uuid4()), **response.headers}
        if response.chunks is not None:
            headers["Transfer-Encoding"] = "chunked"
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            for chunk in response.chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        headers["Content-Length"] = str(len(response.body))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _route(self) -> None:
        emu = self.server.emulator
        url = urlsplit(self.path)
        body = self._body()
        emu.call_log.raw(self.command, self.path, self.headers.items(), body)
        try:
            if url.path.startswith("/_emulator/"):
                response = admin(emu, self.command, url.path, parse_qs(url.query), body)
            elif self.command == "POST" and (match := _RPC_V2_PATH.match(url.path)):
                principal = access_key_id(self.headers.get("Authorization"))
                if match.group(1) == cloudwatch.TARGET_PREFIX:
                    response = cloudwatch_call(emu, match.group(2), body, principal, "cbor")
                else:
                    response = _json(404, {"error": f"no RPC v2 service {match.group(1)}"})
            elif self.command == "POST" and url.path == "/" and self.headers.get("X-Amz-Target"):
                response = json_call(emu, self.headers["X-Amz-Target"], body, self.headers.get("Authorization"))
            elif _is_query_protocol(self.command, url.path, url.query, self.headers.get("Content-Type") or ""):
                response = sts_call(emu, body, url.query, access_key_id(self.headers.get("Authorization")))
            elif self.command == "POST" and (match := _STREAM_PATH.match(url.path)):
                headers = {k.lower(): v for k, v in self.headers.items()}
                principal = access_key_id(self.headers.get("Authorization"))
                response = invoke_endpoint_stream(emu, unquote(match.group(1)), headers, body, principal)
            elif self.command == "POST" and (match := _INVOKE_PATH.match(url.path)):
                headers = {k.lower(): v for k, v in self.headers.items()}
                principal = access_key_id(self.headers.get("Authorization"))
                response = invoke_endpoint(emu, unquote(match.group(1)), headers, body, principal)
            else:
                response = _json(404, {"error": f"no route {self.command} {url.path}"})
        except Exception as exc:  # a bug in the emulator must still answer, loudly
            log.exception("emulator request failed")
            response = _json(500, {"__type": "InternalFailure", "message": f"emulator bug: {exc!r}"})
        self._send(response)

    do_GET = do_POST = do_DELETE = do_PUT = _route
