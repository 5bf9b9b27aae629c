"""SageMaker endpoint state-change events, delivered as EventBridge delivers them to SQS.

What is modelled (SageMaker developer guide, "Events that Amazon SageMaker AI sends to Amazon
EventBridge", https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html):

* every change of an endpoint's EndpointStatus is an event of detail-type
  ``SageMaker Endpoint State Change``, source ``aws.sagemaker``, in the EventBridge envelope
  (version, id, detail-type, source, account, time, region, resources = [the endpoint ARN],
  detail); the detail carries EndpointName, EndpointArn, EndpointConfigName, EndpointStatus in
  upper snake case (``IN_SERVICE``), CreationTime and LastModifiedTime in epoch milliseconds,
  ProductionVariants, Tags (a map) and FailureReason when there is one;
* "SageMaker AI may send multiple events to EventBridge for each state change": consumers must
  be idempotent (the fault injection below duplicates, reorders and drops them on purpose);
* the user's setup decides where events go, as in AWS: an EventBridge rule on the default bus
  whose pattern matches the event (``PutRule`` with the stock ``events`` client), an SQS target
  (``PutTargets``), and a queue policy that lets ``events.amazonaws.com`` ``sqs:SendMessage``
  (optionally only for that rule, ``aws:SourceArn``). Without that policy EventBridge cannot
  deliver and the event is lost (a FailedInvocation in AWS; counted in ``undeliverable`` here).

Rules, targets and queues live in moto's EventBridge and SQS backends, served by
:class:`QueueServer` (moto's server on a side port, like S3) so stock boto3 ``sqs`` and
``events`` clients create them and long-poll ``ReceiveMessage``; every client call is counted.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import io
import json
import queue
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from .calls import CallLog, access_key_id
from .faults import Faults
from .s3 import AccountedMotoServer

DETAIL_TYPE = "SageMaker Endpoint State Change"
SOURCE = "aws.sagemaker"
EVENTS_PRINCIPAL = "events.amazonaws.com"
_UPPER = re.compile(r"(?<!^)(?=[A-Z])")
# How long a held-back (reordered) event waits for a later one to overtake it.
REORDER_HOLD_SECONDS = 1.0


def event_status(status: str) -> str:
    """DescribeEndpoint's ``InService`` as the event spells it: ``IN_SERVICE``."""
    return _UPPER.sub("_", status).upper()


def _millis(epoch_seconds: float) -> float:
    return float(round(epoch_seconds * 1000))


def endpoint_event(snapshot: dict[str, Any], region: str, account: str, now: float) -> dict[str, Any]:
    """The EventBridge envelope of one endpoint state change (``snapshot``: DescribeEndpoint's fields)."""
    detail: dict[str, Any] = {
        "EndpointName": snapshot["EndpointName"],
        "EndpointArn": snapshot["EndpointArn"],
        "EndpointConfigName": snapshot["EndpointConfigName"],
        "ProductionVariants": snapshot.get("ProductionVariants") or [],
        "EndpointStatus": event_status(snapshot["EndpointStatus"]),
        "CreationTime": _millis(snapshot["CreationTime"]),
        "LastModifiedTime": _millis(snapshot["LastModifiedTime"]),
        "Tags": dict(snapshot.get("Tags") or {}),
    }
    if snapshot.get("FailureReason"):
        detail["FailureReason"] = snapshot["FailureReason"]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": account,
        "time": dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [snapshot["EndpointArn"]],
        "detail": detail,
    }


# -- fault injection ---------------------------------------------------------------


@dataclass
class EventFaults:
    """Delivery faults: each event is dropped, held back behind the next one, or sent twice."""

    drop: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0
    endpoint: str | None = None  # only events of endpoints matching this glob
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("drop", "reorder", "duplicate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"event fault {name} must be within 0..1, got {value!r}")

    def applies(self, endpoint_name: str) -> bool:
        return self.endpoint is None or fnmatch.fnmatchcase(endpoint_name, self.endpoint)


@dataclass
class EventCounts:
    published: int = 0  # state changes SageMaker emitted
    delivered: int = 0  # messages sent to queues (a duplicate counts twice)
    dropped: int = 0  # lost by fault injection
    duplicated: int = 0
    reordered: int = 0
    undeliverable: int = 0  # matched a rule whose SQS target's policy does not let EventBridge send


# -- delivery ----------------------------------------------------------------------


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allows_eventbridge(policy_text: str | None, queue_arn: str, rule_arn: str) -> bool:
    """Whether a queue policy lets EventBridge send this rule's events (Allow, the events service
    principal or ``*``, sqs:SendMessage, the queue, and an aws:SourceArn condition if any)."""
    if not policy_text:
        return False
    try:
        statements = _listed(json.loads(policy_text).get("Statement") or [])
    except (ValueError, AttributeError):
        return False
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal")
        services = _listed(principal.get("Service", [])) if isinstance(principal, dict) else [principal]
        if principal != "*" and EVENTS_PRINCIPAL not in services:
            continue
        if not any(fnmatch.fnmatchcase("sqs:SendMessage", a) for a in _listed(st.get("Action") or [])):
            continue
        if not any(fnmatch.fnmatchcase(queue_arn, r) for r in _listed(st.get("Resource") or [])):
            continue
        condition = st.get("Condition") or {}
        sources = [
            v
            for op in ("ArnEquals", "ArnLike", "StringEquals", "StringLike")
            for v in _listed((condition.get(op) or {}).get("aws:SourceArn", []))
        ]
        if sources and not any(fnmatch.fnmatchcase(rule_arn, s) for s in sources):
            continue
        return True
    return False


class EventBus:
    """SageMaker's side of EventBridge: state changes in, messages on the user's queues out.

    :meth:`publish` is called under the SageMaker lock and only enqueues; one thread applies
    the faults and delivers, in order, so events leave in the order the changes happened
    (unless a fault reorders them).
    """

    def __init__(self, account_id: str, region: str, clock: Callable[[], float]) -> None:
        self.account_id, self.region, self._clock = account_id, region, clock
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._faults = EventFaults()
        self._rng = random.Random(0)
        self.counts = EventCounts()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition(self._lock)
        self._pending = 0

    # -- configuration --

    def set_faults(self, **faults: Any) -> None:
        """``drop``/``reorder``/``duplicate`` (probabilities, seeded), ``endpoint`` (a glob); replaces earlier ones."""
        new = EventFaults(**faults)
        with self._lock:
            self._faults, self._rng = new, random.Random(new.seed)

    def clear(self) -> None:
        self.set_faults()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"faults": asdict(self._faults), "counts": asdict(self.counts)}

    # -- lifecycle --

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="djl-emulator-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def routed(self) -> bool:
        """Whether any rule on the default bus could forward an event (someone is listening)."""
        from moto.events.models import events_backends

        if self.account_id not in events_backends:
            return False
        bus = events_backends[self.account_id][self.region].event_buses.get("default")
        return bus is not None and bool(bus.rules)

    def publish(self, snapshot: dict[str, Any]) -> None:
        event = endpoint_event(snapshot, self.region, self.account_id, self._clock())
        with self._lock:
            self.counts.published += 1
            self._pending += 1
        self._queue.put(event)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until every published event was delivered, dropped or is held back (tests)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # -- the delivery thread --

    def _run(self) -> None:
        held: list[dict[str, Any]] = []
        while True:
            try:
                event = self._queue.get(timeout=REORDER_HOLD_SECONDS if held else None)
            except queue.Empty:
                self._deliver_all(held)  # nothing overtook them: they go late, in their order
                held = []
                continue
            if event is None:
                self._deliver_all(held)
                return
            decision = self._decide(event, holding=bool(held))
            if decision == "drop":
                self._done(1)
                continue
            if decision == "hold":
                held.append(event)
                continue
            self._deliver(event, twice=decision == "twice")
            self._deliver_all(held)  # the held ones arrive after this later event
            held = []

    def _decide(self, event: dict[str, Any], holding: bool) -> str:
        """drop, hold (it goes right after the next event: the two swap), twice or send."""
        with self._lock:
            f = self._faults
            if not f.applies(event["detail"]["EndpointName"]):
                return "send"
            if f.drop and self._rng.random() < f.drop:
                self.counts.dropped += 1
                return "drop"
            if f.reorder and not holding and self._rng.random() < f.reorder:
                self.counts.reordered += 1
                return "hold"
            if f.duplicate and self._rng.random() < f.duplicate:
                self.counts.duplicated += 1
                return "twice"
        return "send"

    def _deliver_all(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            self._deliver(event)

    def _deliver(self, event: dict[str, Any], twice: bool = False) -> None:
        try:
            for _ in range(2 if twice else 1):
                self._send(event)  # a duplicate is the same event (same id) delivered again
        finally:
            self._done(1)

    def _done(self, n: int) -> None:
        with self._idle:
            self._pending -= n
            self._idle.notify_all()

    def _send(self, event: dict[str, Any]) -> None:
        from moto.events.models import events_backends
        from moto.sqs.models import sqs_backends

        body = json.dumps(event)
        backend = events_backends[self.account_id][self.region]
        bus = backend.event_buses.get("default")
        for rule in list(bus.rules.values()) if bus is not None else []:
            matches = rule.event_pattern.matches_event(event)  # type: ignore[arg-type]
            if rule.state != "ENABLED" or not matches:
                continue
            for target in list(rule.targets):
                arn = str(target.get("Arn", ""))
                parts = arn.split(":")
                if len(parts) != 6 or parts[2] != "sqs":
                    continue  # only SQS targets are modelled
                region, account, name = parts[3], parts[4], parts[5]
                sqs = sqs_backends[account][region]
                try:
                    queue_ = sqs.get_queue(name)
                except Exception:  # the queue was deleted: EventBridge's invocation fails
                    with self._lock:
                        self.counts.undeliverable += 1
                    continue
                if not _allows_eventbridge(queue_.policy, queue_.queue_arn, rule.arn):
                    with self._lock:
                        self.counts.undeliverable += 1
                    continue
                sqs.send_message(queue_name=name, message_body=body)
                with self._lock:
                    self.counts.delivered += 1


# -- the SQS + EventBridge front end -------------------------------------------------

StartResponse = Callable[..., Any]
_SERVICES = {"AmazonSQS": "sqs", "AWSEvents": "events"}


# A long poll waits in slices this long, so a stop or a wipe never waits for one to run out.
LONG_POLL_SLICE = 0.25
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/")


class _QueueAccounting:
    """Pins requests to the emulator's account and records each SQS/EventBridge call (JSON protocols).

    ReceiveMessage's long poll is served here rather than by moto's own loop, which ignores a stop
    and holds its handler thread (and so the server's stop) for the whole WaitTimeSeconds. What is
    modelled (SQS API reference, ReceiveMessage): "If a message is available, the call returns
    sooner than WaitTimeSeconds. If no messages are available and the wait time expires, the call
    returns successfully with an empty list of messages"; without WaitTimeSeconds the queue's
    ReceiveMessageWaitTimeSeconds applies. Each look is moto's own receive with no wait.
    """

    def __init__(self, app: Any, account_id: str, calls: CallLog, faults: Faults | None) -> None:
        self.app, self.account_id, self.calls, self.faults = app, account_id, calls, faults
        self.closed = threading.Event()
        self.generation = 0  # bumped by a wipe: a poll on a wiped queue ends (the queue is gone)

    def close(self) -> None:
        self.closed.set()

    def wiped(self) -> None:
        self.generation += 1

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_id
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        prefix, _, operation = target.partition(".")
        service = _SERVICES.get(prefix, "unknown")
        principal = access_key_id(environ.get("HTTP_AUTHORIZATION"))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            params = json.loads(raw or b"{}")
        except ValueError:
            params = {}
        resource = params.get("QueueUrl") or params.get("QueueName") or params.get("Name") or params.get("Rule")
        resource = resource if isinstance(resource, str) else None
        injected = (
            self.faults.request_error(
                operation, resource or "*", self.account_id, control_plane=False, action_prefix=service
            )
            if self.faults is not None and operation
            else None
        )
        if injected is not None:
            reply = json.dumps({"__type": injected.code, "message": injected.message}).encode()
            start_response(
                f"{injected.status} {injected.code}",
                [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(reply)))],
            )
            self.calls.record(service, operation, resource, injected.code, len(raw), len(reply), principal)
            return [reply]
        if service == "sqs" and operation == "ReceiveMessage" and isinstance(params, dict):
            status_line, headers, exc_info, body = self._receive(environ, raw, params)
        else:
            status_line, headers, exc_info, body = self._forward(environ, raw)
        start_response(status_line, headers, exc_info)
        error = None
        if int(status_line.split(" ", 1)[0]) >= 300:
            try:
                error = str(json.loads(body).get("__type", "")).rpartition("#")[2] or status_line
            except ValueError:
                error = status_line
        self.calls.record(service, operation or "?", resource, error, len(raw), len(body), principal)
        return [body]

    def _forward(self, environ: dict[str, Any], raw: bytes) -> tuple[str, list[tuple[str, str]], Any, bytes]:
        """moto's answer to the request with body ``raw``."""
        environ = {**environ, "wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw))}
        started: list[tuple[str, list[tuple[str, str]], Any]] = []

        def capture(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started.append((status_line, headers, exc_info))
            return lambda data: None

        body_iter = self.app(environ, capture)
        try:
            body = b"".join(body_iter)
        finally:
            close = getattr(body_iter, "close", None)
            if close:
                close()
        status_line, headers, exc_info = started[0] if started else ("500 Internal Server Error", [], None)
        return status_line, headers, exc_info, body

    def _queue(self, environ: dict[str, Any], url: Any) -> Any:
        """moto's queue a QueueUrl names, in the region the request was signed for; None if there is none."""
        from moto.sqs.models import sqs_backends

        region = _REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
        if not isinstance(url, str) or region is None or self.account_id not in sqs_backends:
            return None
        try:
            return sqs_backends[self.account_id][region.group(1)].get_queue(url.rstrip("/").rpartition("/")[2])
        except Exception:  # no such queue: moto's own answer says so
            return None

    def _receive(
        self, environ: dict[str, Any], raw: bytes, params: dict[str, Any]
    ) -> tuple[str, list[tuple[str, str]], Any, bytes]:
        queue_ = self._queue(environ, params.get("QueueUrl"))
        wait = params.get("WaitTimeSeconds")
        if wait is None and queue_ is not None:
            wait = int(queue_.receive_message_wait_time_seconds or 0)
        if queue_ is None or not isinstance(wait, int) or not 0 < wait <= 20:
            return self._forward(environ, raw)  # no wait, or moto's error for the queue or the value
        deadline = time.monotonic() + wait
        generation = self.generation

        def waiting() -> bool:  # neither the wait over, nor the server stopping, nor the queue wiped
            return time.monotonic() < deadline and not self.closed.is_set() and generation == self.generation

        look = json.dumps({**params, "WaitTimeSeconds": 0}).encode()
        while True:
            answer = self._forward(environ, look)
            if not waiting() or not answer[0].startswith("200") or json.loads(answer[3] or b"{}").get("Messages"):
                return answer
            # Visible messages that moto did not hand out (a FIFO group in flight): look again a
            # slice later. Otherwise until one arrives (moto's queue condition) or the wait ends.
            pending = bool(queue_.messages)
            while waiting():
                remaining = min(LONG_POLL_SLICE, deadline - time.monotonic())
                if pending:
                    self.closed.wait(max(remaining, 0.0))
                    break
                queue_.wait_for_messages(max(remaining, 0.0))
                if queue_.messages:
                    break


class QueueServer(AccountedMotoServer):
    """moto's server for SQS and EventBridge on loopback, with call accounting and a clean stop."""

    middleware = _QueueAccounting

    def wipe(self) -> None:
        """Forget this account's queues and rules (moto's state is per process)."""
        from moto.events.models import events_backends
        from moto.sqs.models import sqs_backends

        for backends in (sqs_backends, events_backends):
            if self.account_id in backends:
                for backend in list(backends[self.account_id].values()):
                    backend.reset()
        if isinstance(self.app, _QueueAccounting):
            self.app.wiped()  # long polls on the wiped queues end

    def stop(self) -> None:
        if isinstance(self.app, _QueueAccounting):
            self.app.close()  # long polls end at once instead of holding the server's stop
        super().stop()
