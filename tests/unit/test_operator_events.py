"""Endpoint events and the batched status read, without AWS: what makes a resource due."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from djl_operator.events import EndpointIndex, EventConsumer, Seen, StatusSweep, parse_event, queue_region

T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)


def event(name: str, status: str = "IN_SERVICE", region: str = "us-east-1", **overrides: Any) -> str:
    body = {
        "version": "0",
        "id": "e-1",
        "detail-type": "SageMaker Endpoint State Change",
        "source": "aws.sagemaker",
        "account": "111122223333",
        "time": "2026-11-26T08:00:00Z",
        "region": region,
        "resources": [f"arn:aws:sagemaker:{region}:111122223333:endpoint/{name.lower()}"],
        "detail": {"EndpointName": name, "EndpointStatus": status},
    }
    body.update(overrides)
    return json.dumps(body)


def test_parse_event_reads_only_endpoint_state_changes() -> None:
    change = parse_event(event("My-Endpoint"))
    assert change is not None and (change.region, change.endpoint_name, change.status) == (
        "us-east-1",
        "My-Endpoint",
        "IN_SERVICE",
    )
    assert parse_event(event("x", **{"detail-type": "SageMaker Model State Change"})) is None
    assert parse_event(event("x", source="aws.ec2")) is None
    assert parse_event(event("x", detail={"EndpointStatus": "IN_SERVICE"})) is None
    assert parse_event("not json") is None
    assert parse_event("[]") is None


def test_an_event_carries_its_last_modified_time_as_describe_reports_it() -> None:
    """EventBridge's detail has LastModifiedTime in epoch milliseconds; DescribeEndpoint a timestamp."""
    millis = 1_795_000_000_123
    change = parse_event(
        event("ep", detail={"EndpointName": "ep", "EndpointStatus": "IN_SERVICE", "LastModifiedTime": millis})
    )
    assert change is not None
    described = dt.datetime.fromtimestamp(1_795_000_000.123456, dt.UTC)  # botocore's parse, finer than events
    assert change.last_modified == dt.datetime.fromtimestamp(millis / 1000, dt.UTC)
    assert Seen("InService", described).covers(change.news())
    assert not Seen("Creating", described).covers(change.news())  # same time, another status
    assert not Seen("InService", described - dt.timedelta(seconds=1)).covers(change.news())
    for nonsense in ("soon", True, 1e30, None):
        odd = parse_event(
            event("ep", detail={"EndpointName": "ep", "EndpointStatus": "IN_SERVICE", "LastModifiedTime": nonsense})
        )
        assert odd is not None and odd.last_modified is None  # still names the endpoint: a look
        assert not Seen("InService", described).covers(odd.news())


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/111122223333/q", "eu-west-1"),
        ("https://sqs.cn-north-1.amazonaws.com.cn/111122223333/q", "cn-north-1"),
        ("http://127.0.0.1:5000/111122223333/q", "us-east-1"),
    ],
)
def test_queue_region(url: str, region: str) -> None:
    assert queue_region(url, "us-east-1") == region


def test_the_index_follows_the_name_each_resource_reports() -> None:
    index = EndpointIndex()
    index.observe("u1", "us-east-1", "Ep-One")
    assert index.lookup("us-east-1", "ep-one") == "u1"
    assert index.lookup("us-west-2", "ep-one") is None  # names are per region
    index.observe("u1", "us-east-1", "ep-renamed")
    assert index.lookup("us-east-1", "ep-one") is None
    assert index.lookup("us-east-1", "EP-RENAMED") == "u1"
    index.forget("u1")
    assert index.lookup("us-east-1", "ep-renamed") is None and len(index) == 0


class FakeSqs:
    def __init__(self, bodies: list[str]) -> None:
        self.bodies = bodies
        self.deleted: list[str] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["WaitTimeSeconds"] == 20 and kwargs["MaxNumberOfMessages"] == 10
        got, self.bodies = self.bodies[:10], self.bodies[10:]
        return {"Messages": [{"Body": b, "ReceiptHandle": f"r{i}"} for i, b in enumerate(got)]}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.deleted += [e["ReceiptHandle"] for e in Entries]
        return {"Successful": Entries}


def test_each_event_is_handed_to_its_resource_then_deleted() -> None:
    index = EndpointIndex()
    index.observe("ours", "us-east-1", "ep-a")
    index.observe("stalled", "us-east-1", "ep-s")
    requested: list[str] = []

    def request(uid: str, news: Seen | None) -> bool:
        requested.append(uid)
        assert news is not None and news.status in ("CREATING", "IN_SERVICE")  # each event's news goes along
        return uid != "stalled"

    bodies = [event("ep-a", "CREATING"), event("ep-a"), event("ep-a"), event("someone-elses"), "garbage", event("ep-s")]
    sqs = FakeSqs(bodies)
    consumer = EventConsumer(sqs, "https://sqs.us-east-1.amazonaws.com/1/q", index, request)
    assert consumer.poll_once() == 6
    assert requested == ["ours", "ours", "ours", "stalled"]  # duplicates are just more looks
    assert consumer.handed_off == 3
    assert sqs.deleted == [f"r{i}" for i in range(6)]  # nothing is left to come back


def sweep_of(listing: dict[str, tuple[str, dt.datetime]]) -> Any:
    def pages(region: str) -> list[dict[str, Any]]:
        assert region == "us-east-1"
        items = [{"EndpointName": n, "EndpointStatus": s, "LastModifiedTime": t} for n, (s, t) in listing.items()]
        return [{"Endpoints": items[:1]}, {"Endpoints": items[1:]}]

    return pages


def test_the_sweep_looks_only_at_what_changed() -> None:
    index = EndpointIndex()
    due: list[str] = []
    seen: dict[str, Seen] = {}  # the scheduler's record of what each resource's last look saw
    sweep = StatusSweep(index, lambda uid, news: news is None and (due.append(uid) or True), seen.get)
    for uid in ("same", "newer", "status", "gone", "appeared", "unseen"):
        index.observe(uid, "us-east-1", f"ep-{uid}")
    seen["same"] = Seen("InService", T0)
    seen["newer"] = Seen("InService", T0)
    seen["status"] = Seen("Creating", T0)
    seen["gone"] = Seen("InService", T0)
    seen["appeared"] = Seen(None)
    listing = {
        "EP-SAME": ("InService", T0),
        "ep-newer": ("InService", T0 + dt.timedelta(seconds=1)),
        "ep-status": ("InService", T0),
        "ep-appeared": ("Creating", T0),
        "ep-unseen": ("InService", T0),
    }
    assert sorted(sweep.sweep(sweep_of(listing))) == ["appeared", "gone", "newer", "status"]
    assert sorted(due) == ["appeared", "gone", "newer", "status"]
    seen["gone"] = Seen(None)  # the reconcile found it gone: consistent from now on
    due.clear()
    sweep.sweep(sweep_of({k: v for k, v in listing.items() if k != "ep-gone"}))
    assert "gone" not in due


def test_shards_are_stable_and_spread() -> None:
    from djl_operator.sharding import shard_of

    uids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(3000)]
    shards = [shard_of(u, 3) for u in uids]
    assert shards == [shard_of(u, 3) for u in uids]  # the same in every process (no hash seed)
    # Pinned: a change of the hash would move every resource to another replica on upgrade.
    assert [shard_of("6f1c2a7e-0d7b-4a43-9f0e-3c4f1e2a9b10", n) for n in (2, 3, 5, 7)] == [1, 2, 3, 5]
    counts = [shards.count(i) for i in range(3)]
    assert min(counts) > 900, counts  # about a third each
    assert {shard_of(u, 1) for u in uids} == {0}
