"""SageMaker endpoint state-change events: the EventBridge rule -> SQS setup a user makes with
stock boto3, the envelope as documented, and the delivery faults (drop, reorder, duplicate)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from djl_operator_kit.emulator import Emulator
from djl_operator_kit.emulator.events import DETAIL_TYPE, event_status
from tests.plugins.emulator import config, model, upload, wait_status
from tests.plugins.events import route_endpoint_events
from tests.plugins.operator import wait_for


def route_events(emu: Emulator, *, allow: bool = True) -> str:
    return route_endpoint_events(emu, allow=allow)


def endpoint(emu: Emulator, name: str) -> None:
    sm = emu.client("sagemaker")
    model(sm, f"{name}-m", upload(emu.client("s3"), "events-bucket", f"{name}/model.tar.gz"))
    config(sm, f"{name}-c", f"{name}-m")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c", Tags=[{"Key": "team", "Value": "a"}])


def drain(emu: Emulator, url: str) -> list[dict[str, Any]]:
    """Every message now on the queue, deleted after reading (long polls until one comes back empty)."""
    assert emu.events.wait_idle()
    sqs, found = emu.client("sqs"), []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not got:
            return found
        for message in got:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def statuses(events: list[dict[str, Any]]) -> list[str]:
    return [e["detail"]["EndpointStatus"] for e in events]


def test_event_status_spelling() -> None:
    assert [event_status(s) for s in ("InService", "Creating", "RollingBack", "SystemUpdating", "OutOfService")] == [
        "IN_SERVICE",
        "CREATING",
        "ROLLING_BACK",
        "SYSTEM_UPDATING",
        "OUT_OF_SERVICE",
    ]


def test_state_changes_arrive_in_the_eventbridge_envelope(make_emulator: Any) -> None:
    emu = make_emulator(create_delay=0.3)
    url = route_events(emu)
    endpoint(emu, "ev")
    # Nobody reads the endpoint: the emulator's clock still moves it, and the event leaves on time.
    sqs = emu.client("sqs")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5)["Messages"]
    events = [json.loads(m["Body"]) for m in got]
    for m in got:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    events += drain(emu, url)
    assert statuses(events) == ["CREATING", "IN_SERVICE"]
    arn = f"arn:aws:sagemaker:{emu.region}:{emu.account_id}:endpoint/ev"
    first, last = events
    assert set(first) >= {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert (first["version"], first["detail-type"], first["source"]) == ("0", DETAIL_TYPE, "aws.sagemaker")
    assert (first["account"], first["region"], first["resources"]) == (emu.account_id, emu.region, [arn])
    assert first["id"] != last["id"]
    described = emu.client("sagemaker").describe_endpoint(EndpointName="ev")
    detail = last["detail"]
    assert detail["EndpointName"] == "ev" and detail["EndpointArn"] == arn
    assert detail["EndpointConfigName"] == "ev-c"
    assert detail["Tags"] == {"team": "a"}
    assert detail["LastModifiedTime"] == round(described["LastModifiedTime"].timestamp() * 1000)
    assert detail["CreationTime"] == round(described["CreationTime"].timestamp() * 1000)
    # The queue's calls were the test's own, counted like every other service's.
    ops = {c.operation for c in emu.calls(service="sqs")}
    assert {"CreateQueue", "ReceiveMessage", "DeleteMessage"} <= ops
    assert {c.operation for c in emu.calls(service="events")} == {"PutRule", "PutTargets"}


def test_update_failure_and_delete_are_events_too(make_emulator: Any) -> None:
    emu = make_emulator()
    url = route_events(emu)
    endpoint(emu, "life")
    sm = emu.client("sagemaker")
    wait_status(sm, "life", "InService")
    emu.force_endpoint_failed("life", "boom")
    sm.delete_endpoint(EndpointName="life")
    events = drain(emu, url)
    assert statuses(events) == ["CREATING", "IN_SERVICE", "FAILED", "DELETING"]
    assert events[2]["detail"]["FailureReason"] == "boom"


def test_without_the_queue_policy_eventbridge_cannot_deliver(make_emulator: Any) -> None:
    emu = make_emulator()
    url = route_events(emu, allow=False)
    endpoint(emu, "nopolicy")
    assert drain(emu, url) == []
    assert emu.events.counts.undeliverable == 2 and emu.events.counts.delivered == 0


def test_without_a_rule_nothing_is_sent(make_emulator: Any) -> None:
    emu = make_emulator()
    url = emu.client("sqs").create_queue(QueueName="lonely")["QueueUrl"]
    endpoint(emu, "norule")
    wait_status(emu.client("sagemaker"), "norule", "InService")  # without a rule, reads move the lifecycle
    assert drain(emu, url) == []
    assert emu.events.counts.published == 2 and emu.events.counts.delivered == 0


def test_duplicates_are_the_same_event_twice(make_emulator: Any) -> None:
    emu = make_emulator()
    url = route_events(emu)
    emu.events.set_faults(duplicate=1.0)
    endpoint(emu, "dup")
    events = drain(emu, url)
    assert statuses(events) == ["CREATING", "CREATING", "IN_SERVICE", "IN_SERVICE"]
    assert events[0] == events[1] and events[2] == events[3]


def test_reordered_events_swap_with_the_next_one(make_emulator: Any) -> None:
    emu = make_emulator(create_delay=0.2)
    url = route_events(emu)
    emu.events.set_faults(reorder=1.0)
    endpoint(emu, "late")
    assert statuses(drain(emu, url)) == ["IN_SERVICE", "CREATING"]
    assert emu.events.counts.reordered == 1


def test_dropped_events_and_the_endpoint_glob(make_emulator: Any) -> None:
    emu = make_emulator()
    url = route_events(emu)
    emu.events.set_faults(drop=1.0, endpoint="lost-*")
    endpoint(emu, "lost-1")
    endpoint(emu, "kept-1")
    events = drain(emu, url)
    assert {e["detail"]["EndpointName"] for e in events} == {"kept-1"}
    assert emu.events.counts.dropped == 2


def test_bad_fault_values_are_refused(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match=r"drop must be within 0\.\.1"):
        emulator.events.set_faults(drop=2)


def _long_poll(emu: Emulator, url: str, wait: int) -> tuple[threading.Thread, dict[str, Any]]:
    """ReceiveMessage(WaitTimeSeconds=wait) in a thread of its own, once it reached the queue server."""
    tracking = emu._queues._tracking  # moto's server answers one request per connection
    assert tracking is not None
    wait_for(lambda: not tracking._conns, timeout=10, what="earlier connections closed")
    sqs, result = emu.client("sqs", config=Config(retries={"total_max_attempts": 1})), {}

    def poll() -> None:
        started = time.monotonic()
        try:
            result["messages"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=wait).get("Messages", [])
        except Exception as exc:  # the stop cuts the connection
            result["error"] = type(exc).__name__
        result["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    wait_for(lambda: tracking._conns, timeout=10, what="the long poll's connection")
    return thread, result


def test_a_long_poll_returns_when_a_message_arrives_or_at_its_wait(emulator: Emulator) -> None:
    sqs = emulator.client("sqs")
    url = sqs.create_queue(QueueName="polled")["QueueUrl"]
    thread, result = _long_poll(emulator, url, 20)
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    thread.join(timeout=15)
    assert [m["Body"] for m in result["messages"]] == ["hello"] and result["seconds"] < 15
    # Nothing comes: an empty answer once WaitTimeSeconds is over, not before.
    started = time.monotonic()
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []
    assert time.monotonic() - started >= 1
    # Without WaitTimeSeconds the queue's ReceiveMessageWaitTimeSeconds applies.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"ReceiveMessageWaitTimeSeconds": "1"})
    started = time.monotonic()
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    assert time.monotonic() - started >= 1
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=21)
    assert [c.operation for c in emulator.calls("sqs")].count("ReceiveMessage") == 4


def test_a_reset_or_a_stop_does_not_wait_for_a_long_poll(make_emulator: Any) -> None:
    emu = make_emulator()
    url = emu.client("sqs").create_queue(QueueName="polled")["QueueUrl"]
    thread, result = _long_poll(emu, url, 20)
    emu.reset()  # the queue is gone, as after DeleteQueue
    thread.join(timeout=15)
    assert result["error"] == "QueueDoesNotExist" and result["seconds"] < 15
    url = emu.client("sqs").create_queue(QueueName="polled")["QueueUrl"]
    thread, result = _long_poll(emu, url, 20)
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 10  # not the 20 s the poll asked for
    thread.join(timeout=15)
    assert "error" in result
