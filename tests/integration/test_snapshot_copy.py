"""spec.model.snapshot's copy (djl_operator.snapshot) between the local Hub and the emulator's S3.

Real HTTP on both sides: the operator's Hub client against LocalHub, stock boto3 against the
emulator's S3 (moto), whose call log counts the bytes each call carried.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from djl_operator.api import DjlEndpointResource
from djl_operator.conditions import Reason
from djl_operator.hub import HubClient
from djl_operator.kube_secrets import SecretUnavailable
from djl_operator.planner import Next
from djl_operator.snapshot import Cancelled, Gate, Progress, Snapshots, copy_commit, marker_key, snapshot_prefix
from djl_operator_kit.emulator import Emulator
from djl_operator_kit.hub import LocalHub, Synthetic
from tests.plugins.operator import wait_for

BUCKET = "snapshots"
FOLDER = "djl-operator/team/llm/uid-1/"
TOKEN, OTHER = "hf_snapshot_test_token_0123456789", "hf_someone_else_9876543210"
PART = 5 * 2**20
FILES: dict[str, bytes | Synthetic] = {
    "config.json": b'{"model_type": "bert"}',
    "tokenizer.json": b'{"version": "1.0"}' * 50,
    "model.safetensors": Synthetic(12 * 2**20 + 123, seed=3),  # three parts
}


@pytest.fixture
def hub() -> Iterator[LocalHub]:
    with LocalHub() as running:
        running.add_user("alice", TOKEN)
        running.add_user("bob", OTHER)
        running.add_repo("org/open")
        running.add_repo("org/gated", gated=True, granted=("alice",))
        yield running


@pytest.fixture
def s3(emulator: Emulator) -> Any:
    client = emulator.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def _content(value: bytes | Synthetic) -> bytes:
    return value if isinstance(value, bytes) else b"".join(value.chunks(0, value.size))


def _uploaded(emulator: Emulator) -> int:
    ops = ("PutObject", "UploadPart")
    return sum(c.bytes for c in emulator.calls() if c.service == "s3" and c.operation in ops)


def test_copy_streams_every_file_then_skips_them_all(hub: LocalHub, s3: Any, emulator: Emulator) -> None:
    commit = hub.commit("org/open", FILES)
    revision = HubClient(hub.url).revision("org/open", "main")
    assert revision.commit == commit and revision.total_bytes == sum(len(_content(v)) for v in FILES.values())
    progress = Progress(len(revision.files), revision.total_bytes)
    copy_commit(
        s3, HubClient(hub.url), revision, bucket=BUCKET, folder=FOLDER, kms_key_id=None,
        part_bytes=PART, progress=progress, cancel=threading.Event(),
    )  # fmt: skip
    prefix = snapshot_prefix(FOLDER, commit)
    for path, value in FILES.items():
        assert s3.get_object(Bucket=BUCKET, Key=prefix + path)["Body"].read() == _content(value), path
    assert (progress.files_done, progress.bytes_done, progress.files_skipped) == (3, revision.total_bytes, 0)
    calls = [c.operation for c in emulator.calls() if c.service == "s3" and c.ok]
    assert calls.count("UploadPart") == 3 and calls.count("CompleteMultipartUpload") == 1
    assert calls.count("PutObject") == 3  # two small files and the marker
    marker = s3.head_object(Bucket=BUCKET, Key=marker_key(FOLDER, commit))["Metadata"]
    assert marker == {"hf-commit": commit, "files": "3", "bytes": str(revision.total_bytes)}

    before = _uploaded(emulator)
    again = Progress(len(revision.files), revision.total_bytes)
    copy_commit(
        s3, HubClient(hub.url), revision, bucket=BUCKET, folder=FOLDER, kms_key_id=None,
        part_bytes=PART, progress=again, cancel=threading.Event(),
    )  # fmt: skip
    assert (again.files_skipped, again.bytes_uploaded) == (3, 0)
    marker_size = len(s3.get_object(Bucket=BUCKET, Key=marker_key(FOLDER, commit))["Body"].read())
    assert _uploaded(emulator) - before == marker_size  # only the marker is written again
    assert not [c for c in hub.requests("GET", "/resolve/") if c.status == 200][3:]  # no file fetched twice


def test_a_copy_cut_short_resumes_with_the_files_it_had_not_finished(
    hub: LocalHub, s3: Any, emulator: Emulator
) -> None:
    commit = hub.commit("org/open", FILES)
    revision = HubClient(hub.url).revision("org/open", commit)
    prefix = snapshot_prefix(FOLDER, commit)
    # What a killed operator leaves: one file done, a multipart upload half-way.
    s3.put_object(
        Bucket=BUCKET, Key=prefix + "config.json", Body=_content(FILES["config.json"]),
        Metadata={"hf-etag": revision.files[0].etag},
    )  # fmt: skip
    assert revision.files[0].path == "config.json"
    stale = s3.create_multipart_upload(Bucket=BUCKET, Key=prefix + "model.safetensors")["UploadId"]
    s3.upload_part(Bucket=BUCKET, Key=prefix + "model.safetensors", UploadId=stale, PartNumber=1, Body=b"x" * PART)
    # A file whose object differs (an older blob) is copied again.
    s3.put_object(Bucket=BUCKET, Key=prefix + "tokenizer.json", Body=b"old", Metadata={"hf-etag": "old"})
    progress = Progress(len(revision.files), revision.total_bytes)
    copy_commit(
        s3, HubClient(hub.url), revision, bucket=BUCKET, folder=FOLDER, kms_key_id=None,
        part_bytes=PART, progress=progress, cancel=threading.Event(),
    )  # fmt: skip
    assert progress.files_skipped == 1
    assert progress.bytes_uploaded == revision.total_bytes - len(_content(FILES["config.json"]))
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    aborted = [c for c in emulator.calls() if c.operation == "AbortMultipartUpload"]
    assert len(aborted) == 1 and aborted[0].ok
    assert s3.get_object(Bucket=BUCKET, Key=prefix + "tokenizer.json")["Body"].read() == FILES["tokenizer.json"]
    assert sorted(c.path.rsplit("/", 1)[1] for c in hub.requests("GET", "/resolve/")) == [
        "model.safetensors",
        "tokenizer.json",
    ]


def test_a_cancelled_copy_aborts_its_upload(hub: LocalHub, s3: Any) -> None:
    commit = hub.commit("org/open", {"big.bin": Synthetic(11 * 2**20)})
    revision = HubClient(hub.url).revision("org/open", commit)
    cancel = threading.Event()
    progress = Progress(1, revision.total_bytes)

    class CancelAfterFirstPart:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def upload_part(self, **kwargs: Any) -> Any:
            reply = self.inner.upload_part(**kwargs)
            cancel.set()
            return reply

    with pytest.raises(Cancelled):
        copy_commit(
            CancelAfterFirstPart(s3), HubClient(hub.url), revision, bucket=BUCKET, folder=FOLDER,
            kms_key_id=None, part_bytes=PART, progress=progress, cancel=cancel,
        )  # fmt: skip
    assert progress.bytes_done == PART
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def _resource(
    repo: str, *, token: bool = False, revision: str | None = None, status: Any = None
) -> DjlEndpointResource:
    model: dict[str, Any] = {"id": repo, "snapshot": True}
    if token:
        model["tokenSecretRef"] = {"name": "hf", "key": "token"}
    if revision:
        model["revision"] = revision
    body = {
        "metadata": {"name": "llm", "namespace": "team", "uid": "uid-1", "generation": 3},
        "spec": {
            "model": model,
            "instance": {"type": "ml.g5.xlarge"},
            "aws": {"executionRoleArn": "arn:aws:iam::123456789012:role/R", "artifactBucket": BUCKET},
        },
        "status": status or {},
    }
    return DjlEndpointResource.from_body(body)


def _snapshots(hub: LocalHub, secrets: dict[tuple[str, str, str], str]) -> Snapshots:
    def read(namespace: str, name: str, key: str) -> str:
        if (namespace, name, key) not in secrets:
            raise SecretUnavailable(f"secret {namespace}/{name} does not exist")
        return secrets[(namespace, name, key)]

    return Snapshots(part_bytes=PART, endpoint=hub.url, read_secret=read)


def _until_done(snapshots: Snapshots, resource: DjlEndpointResource, s3: Any) -> list[Gate]:
    gates: list[Gate] = []

    def step() -> Gate | None:
        gate = snapshots.step(resource, s3)
        gates.append(gate)
        return gate if gate.resource is not None or gate.next is not Next.POLL else None

    wait_for(step, timeout=60, interval=0.05, what="the snapshot gate to settle")
    return gates


def test_gated_repo_with_the_token_copies_and_is_served_from_s3(hub: LocalHub, s3: Any) -> None:
    commit = hub.commit("org/gated", FILES)
    snapshots = _snapshots(hub, {("team", "hf", "token"): TOKEN})
    resource = _resource("org/gated", token=True)
    gates = _until_done(snapshots, resource, s3)
    first, last = gates[0], gates[-1]
    assert first.resource is None and first.reason is Reason.SNAPSHOTTING and first.next is Next.POLL
    assert [e[1] for e in first.events] == ["SnapshotStarted"]
    assert last.resource is not None and [e[1] for e in last.events] == ["SnapshotCompleted"]
    uri = f"s3://{BUCKET}/{snapshot_prefix(FOLDER, commit)}"
    assert last.resource.spec.model.id == uri and last.resource.spec.model.token_secret_ref is None
    assert last.status["commit"] == commit and last.status["progress"] == "100%"
    assert (last.status["files"], last.status["filesDone"]) == (3, 3)
    assert {c.user for c in hub.calls} == {"alice"}
    # The next generation's first look, with the commit pinned in status: the marker answers, no Hub call.
    calls = len(hub.calls)
    pinned = _resource("org/gated", token=True, status={"snapshot": last.status})
    again = snapshots.step(pinned, s3)
    assert again.resource is not None and again.events == () and len(hub.calls) == calls
    # Another process (an operator restart) finds the marker: still nothing to copy.
    fresh = _snapshots(hub, {("team", "hf", "token"): TOKEN}).step(pinned, s3)
    assert fresh.resource is not None and fresh.status["bytesDone"] == last.status["bytesTotal"]
    assert len(hub.calls) == calls
    everything = repr(gates) + repr(again) + repr(fresh)
    assert TOKEN not in everything


@pytest.mark.parametrize(
    ("token", "revision", "reason", "next_step", "status"),
    [
        (None, None, Reason.HUB_AUTH_REQUIRED, Next.STALLED, 401),
        (OTHER, None, Reason.HUB_ACCESS_DENIED, Next.RETRY, 403),
        ("hf_unknown_token_value_xyz", None, Reason.HUB_ACCESS_DENIED, Next.RETRY, 401),
        (TOKEN, "no-such-branch", Reason.HUB_NOT_FOUND, Next.STALLED, 404),
    ],
)
def test_hub_refusals_are_reported_with_the_hubs_reason(
    hub: LocalHub, s3: Any, token: str | None, revision: str | None, reason: Reason, next_step: Next, status: int
) -> None:
    hub.commit("org/gated", FILES)
    secrets = {("team", "hf", "token"): token} if token else {}
    gates = _until_done(
        _snapshots(hub, secrets), _resource("org/gated", token=token is not None, revision=revision), s3
    )
    last = gates[-1]
    assert (last.reason, last.next, last.warn) == (reason, next_step, True)
    assert f"the Hub answered {status}" in last.message
    if token:
        assert token not in repr(gates)
    if reason is Reason.HUB_AUTH_REQUIRED:
        assert "GatedRepo" in last.message and "spec.model.tokenSecretRef" in last.message
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_missing_secret_and_a_hub_outage_are_retried(hub: LocalHub, s3: Any) -> None:
    hub.commit("org/gated", FILES)
    gate = _snapshots(hub, {}).step(_resource("org/gated", token=True), s3)
    assert (gate.reason, gate.next) == (Reason.HUB_TOKEN_UNAVAILABLE, Next.RETRY)
    assert "secret team/hf does not exist" in gate.message
    hub.fail("/api/models/", 503)
    gate = _snapshots(hub, {("team", "hf", "token"): TOKEN}).step(_resource("org/gated", token=True), s3)
    assert (gate.reason, gate.next, gate.warn) == (Reason.RETRYING, Next.BACKOFF, False)
    hub.fail("model.safetensors", 503)
    gates = _until_done(_snapshots(hub, {("team", "hf", "token"): TOKEN}), _resource("org/gated", token=True), s3)
    assert (gates[-1].reason, gates[-1].next) == (Reason.RETRYING, Next.BACKOFF)


def test_kept_requests_hold_every_byte_the_emulator_was_sent(emulator: Emulator, s3: Any) -> None:
    """What makes tests/e2e/test_snapshot.py's grep for the token meaningful: bodies and headers, S3 and SageMaker."""
    emulator.call_log.keep_requests()
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"needle-in-an-s3-body", Metadata={"m": "needle-in-a-header"})
    sm = emulator.client("sagemaker")
    with pytest.raises(sm.exceptions.ClientError):
        sm.describe_model(ModelName="needle-in-a-sagemaker-body")
    kept = b"\n".join(emulator.call_log.requests())
    for needle in (b"needle-in-an-s3-body", b"needle-in-a-header", b"needle-in-a-sagemaker-body"):
        assert needle in kept, needle
    emulator.call_log.keep_requests(False)
    s3.put_object(Bucket=BUCKET, Key="k2", Body=b"not kept")
    assert b"not kept" not in b"\n".join(emulator.call_log.requests())


def test_a_spec_change_that_leaves_the_model_alone_does_not_restart_the_copy(hub: LocalHub, s3: Any) -> None:
    hub.commit("org/open", FILES)
    release = hub.hold("model.safetensors")
    snapshots = _snapshots(hub, {})
    first = snapshots.step(_resource("org/open"), s3)
    assert [e[1] for e in first.events] == ["SnapshotStarted"]
    wait_for(lambda: snapshots.step(_resource("org/open"), s3).status["filesDone"] >= 1, timeout=30, what="a file done")
    body = _resource("org/open").model_dump()
    body["generation"] = 4  # e.g. spec.instance.count changed
    later = snapshots.step(DjlEndpointResource.model_validate(body), s3)
    assert (later.resource, later.events, later.reason) == (None, (), Reason.SNAPSHOTTING)
    assert later.status["generation"] == 4 and later.status["commit"] == first.status["commit"]
    assert len(hub.requests("GET", "/api/models/")) == 1  # not resolved again, not restarted
    release.set()
    gates = _until_done(snapshots, DjlEndpointResource.model_validate(body), s3)
    assert gates[-1].resource is not None and len(hub.requests("GET", "model.safetensors")) == 1
