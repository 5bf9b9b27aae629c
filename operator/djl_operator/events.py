"""Endpoint state-change events from SQS, and the batched status read: two ways to learn that an
endpoint changed without describing each one on a timer.

Both only make a resource due through :meth:`Scheduler.request` (the one trigger path); the
reconcile that follows reads the endpoint itself and proves ownership by its tags as always.
Nothing an event says is trusted: it only names an endpoint, which the :class:`EndpointIndex`
maps to the resource whose status last named it. Events are at-least-once, may repeat, come
out of order or never: one whose state (status and LastModifiedTime) the resource's last look
already saw, or saw a newer state than, is no news and starts no look (:meth:`Seen.covers`:
a duplicate, the Creating event of the operator's own create, an old event overtaken); any
other starts one level-triggered look, and a lost one is caught by the batched read
(:class:`StatusSweep`), which runs whether or not a queue is configured.

The queue receives what an EventBridge rule forwards (README, "Events and scale"):
``{"source": ["aws.sagemaker"], "detail-type": ["SageMaker Endpoint State Change"]}``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from djl_operator.aws_clients import AwsClients, default_region
from djl_operator.settings import Settings

log = logging.getLogger(__name__)

DETAIL_TYPE = "SageMaker Endpoint State Change"
SOURCE = "aws.sagemaker"
_QUEUE_REGION = re.compile(r"^https://sqs[.-]([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/")


def queue_region(url: str, default: str) -> str:
    """The region of an SQS queue URL (``https://sqs.<region>.amazonaws.com/<account>/<name>``)."""
    match = _QUEUE_REGION.match(url)
    return match.group(1) if match else default


@dataclass(frozen=True)
class EndpointChange:
    region: str
    endpoint_name: str
    status: str
    last_modified: dt.datetime | None = None  # the detail's LastModifiedTime (epoch milliseconds)

    def news(self) -> Seen:
        """What the event says of the endpoint, as a reconcile would have seen it."""
        return Seen(self.status, self.last_modified)


def parse_event(body: str) -> EndpointChange | None:
    """The endpoint a state-change event names, or None for anything else on the queue."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("detail-type") != DETAIL_TYPE or event.get("source") != SOURCE:
        return None
    detail, region = event.get("detail"), event.get("region")
    if not isinstance(detail, dict) or not isinstance(region, str):
        return None
    name, status = detail.get("EndpointName"), detail.get("EndpointStatus")
    if not isinstance(name, str) or not name:
        return None
    millis = detail.get("LastModifiedTime")
    modified = None
    if isinstance(millis, int | float) and not isinstance(millis, bool):
        try:
            modified = dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
        except (OverflowError, OSError, ValueError):
            modified = None  # nonsense from the queue: the event still names the endpoint
    return EndpointChange(region, name, status if isinstance(status, str) else "", modified)


class EndpointIndex:
    """(region, endpoint name) -> the uid of the resource whose status names that endpoint.

    Kept from what the operator observes (each tick reads the resource's status); thread-safe.
    Endpoint names are unique per account and region, and SageMaker compares them without case.
    """

    def __init__(self) -> None:
        self._by_name: dict[tuple[str, str], str] = {}
        self._by_uid: dict[str, tuple[str, str]] = {}
        self._guard = threading.Lock()

    def observe(self, uid: str, region: str, endpoint_name: str | None) -> None:
        key = (region, endpoint_name.lower()) if endpoint_name else None
        with self._guard:
            old = self._by_uid.get(uid)
            if old == key:
                return
            if old is not None and self._by_name.get(old) == uid:
                del self._by_name[old]
            if key is None:
                self._by_uid.pop(uid, None)
                return
            self._by_uid[uid] = key
            self._by_name[key] = uid

    def lookup(self, region: str, endpoint_name: str) -> str | None:
        with self._guard:
            return self._by_name.get((region, endpoint_name.lower()))

    def forget(self, uid: str) -> None:
        self.observe(uid, "", None)

    def entries(self) -> list[tuple[str, str, str]]:
        """``(uid, region, lower-cased endpoint name)`` of every indexed resource."""
        with self._guard:
            return [(uid, region, name) for uid, (region, name) in self._by_uid.items()]

    def __len__(self) -> int:
        with self._guard:
            return len(self._by_uid)


class EventConsumer:
    """Long-polls the queue; each event makes its resource due at once, then the message is deleted.

    ``request(uid, news)`` is the scheduler's (True: handed off; False also for an event that only
    repeats what the resource's last look saw). A message is deleted once handed off
    or once it proves to be about no resource of ours (another endpoint in the account, another
    event type): nothing is gained by seeing it again, and the batched read covers a resource
    the index did not know yet.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        index: EndpointIndex,
        request: Callable[[str, Seen | None], bool],
        *,
        wait_seconds: int = 20,
        error_backoff: float = 5.0,
    ) -> None:
        self.sqs, self.queue_url, self.index, self.request = sqs, queue_url, index, request
        self.wait_seconds, self.error_backoff = wait_seconds, error_backoff
        self.stop = threading.Event()
        self.received = 0
        self.handed_off = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="djl-events", daemon=True)
        self._thread.start()

    def check(self) -> str | None:
        """The queue's ARN, read once at start-up so a wrong URL or a missing permission shows at once."""
        try:
            answer = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        except (ClientError, BotoCoreError) as exc:
            log.warning("cannot read the events queue %s (%s); polling meanwhile", self.queue_url, exc)
            return None
        arn = (answer.get("Attributes") or {}).get("QueueArn")
        return str(arn) if arn else None

    def close(self) -> None:
        self.stop.set()

    def run(self) -> None:
        failing = False
        while not self.stop.is_set():
            try:
                self.poll_once()
                if failing:
                    log.info("reading endpoint events from %s again", self.queue_url)
                failing = False
            except (ClientError, BotoCoreError) as exc:
                # Polling is the safety net meanwhile; say so once, not every try.
                if not failing:
                    log.warning("cannot read endpoint events from %s (%s); retrying", self.queue_url, exc)
                failing = True
                self.stop.wait(self.error_backoff)

    def poll_once(self) -> int:
        """One long poll; the number of messages it handled."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=self.wait_seconds
        )
        messages = answer.get("Messages") or []
        done: list[dict[str, str]] = []
        for message in messages:
            self.received += 1
            change = parse_event(message.get("Body") or "")
            uid = self.index.lookup(change.region, change.endpoint_name) if change else None
            if uid is not None and change is not None and self.request(uid, change.news()):
                self.handed_off += 1
                log.debug("endpoint %s is %s: reconciling %s", change.endpoint_name if change else "", change, uid)
            done.append({"Id": str(len(done)), "ReceiptHandle": message["ReceiptHandle"]})
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done)
        return len(messages)


@dataclass(frozen=True)
class Seen:
    """What the last reconcile saw of a resource's endpoint (None: no endpoint of ours)."""

    status: str | None
    last_modified: Any = None

    def covers(self, news: Seen) -> bool:
        """Whether this look already saw what ``news`` (an endpoint event) reports: a state changed
        no later than what this look saw, so the event is no news and needs no reconcile.

        Only a time on both sides can prove that: without one, the event is news. Events spell
        statuses ``IN_SERVICE``, DescribeEndpoint ``InService``."""
        mine, theirs = _millis(self.last_modified), _millis(news.last_modified)
        if mine is None or theirs is None:
            return False
        return theirs < mine or (theirs == mine and _status_key(self.status) == _status_key(news.status))


def _millis(value: Any) -> int | None:
    """A LastModifiedTime to the millisecond, the precision events carry."""
    return round(value.timestamp() * 1000) if isinstance(value, dt.datetime) else None


def _status_key(status: str | None) -> str:
    return (status or "").replace("_", "").lower()


class StatusSweep:
    """The batched status read: ListEndpoints (pages of 100) per region instead of a describe each.

    A resource whose endpoint's status and LastModifiedTime are what its last reconcile saw
    needs no look; one whose endpoint changed, appeared or went away is made due at once (the
    reconcile then describes it). ``seen(uid)`` is what that reconcile saw (the scheduler's
    record of it; None: never reconciled here).
    """

    def __init__(
        self,
        index: EndpointIndex,
        request: Callable[[str, Seen | None], bool],
        seen: Callable[[str], Seen | None],
    ) -> None:
        self.index, self.request, self.seen = index, request, seen

    def sweep(self, list_pages: Callable[[str], Iterable[dict[str, Any]]]) -> list[str]:
        """One pass over every indexed resource; the uids it made due."""
        by_region: dict[str, list[tuple[str, str]]] = {}
        for uid, region, name in self.index.entries():
            by_region.setdefault(region, []).append((uid, name))
        changed: list[str] = []
        for region, resources in by_region.items():
            listed: dict[str, tuple[str, Any]] = {}
            for page in list_pages(region):
                for summary in page.get("Endpoints", []):
                    listed[summary["EndpointName"].lower()] = (summary["EndpointStatus"], summary["LastModifiedTime"])
            for uid, name in resources:
                last = self.seen(uid)
                if last is None:
                    continue  # never reconciled here yet: its first look is coming anyway
                now = listed.get(name)
                before = (last.status, last.last_modified) if last.status is not None else None
                if now != before and self.request(uid, None):
                    changed.append(uid)
        return changed


class StatusReaders:
    """What tells the scheduler that endpoints changed: the batched read and, with a queue, events.

    Each runs in a daemon thread of its own; :meth:`close` stops them at the operator's cleanup.
    """

    def __init__(
        self,
        settings: Settings,
        clients: AwsClients,
        request: Callable[[str, Seen | None], bool],
        seen: Callable[[str], Seen | None],
    ) -> None:
        self.settings, self.clients = settings, clients
        self.index = EndpointIndex()
        self.sweep = StatusSweep(self.index, request, seen)
        self.consumer: EventConsumer | None = None
        if settings.events_queue_url:
            url = settings.events_queue_url
            sqs = clients.client("sqs", queue_region(url, default_region()))
            self.consumer = EventConsumer(sqs, url, self.index, request)
        self._stop = threading.Event()

    def start(self) -> None:
        if self.consumer is not None:
            arn = self.consumer.check()
            log.info("reading endpoint events from %s", arn or self.consumer.queue_url)
            self.consumer.start()
        threading.Thread(target=self._sweep_forever, name="djl-status-sweep", daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        if self.consumer is not None:
            self.consumer.close()

    def list_pages(self, region: str) -> Iterable[dict[str, Any]]:
        sagemaker = self.clients.for_region(region).sagemaker
        pages: Iterable[dict[str, Any]] = sagemaker.get_paginator("list_endpoints").paginate(
            PaginationConfig={"PageSize": 100}
        )
        return pages

    def _sweep_forever(self) -> None:
        failing = False
        while not self._stop.wait(self.settings.status_read_interval):
            if not len(self.index):
                continue
            try:
                changed = self.sweep.sweep(self.list_pages)
                if changed:
                    log.debug("the status read found %d changed endpoints", len(changed))
                failing = False
            except (ClientError, BotoCoreError) as exc:
                if not failing:  # the per-resource resync still runs; say so once
                    log.warning("the batched endpoint status read failed (%s); retrying", exc)
                failing = True
