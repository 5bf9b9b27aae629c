"""spec.model.snapshot with tokenSecretRef, end to end: a gated tiny model from the local Hub,
copied into the emulator's S3 by the operator and served from there.

Every byte the emulator was sent (its kept requests), every status, event and operator log line
of the run is searched for the token: it is never there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from djl_operator import javaprops, naming
from djl_operator_kit.hub import Synthetic
from tests.plugins.models import HIDDEN, needs_torch
from tests.plugins.operator import BUCKET, OPERATOR_ACCESS_KEY, Cluster, endpoint_manifest, wait_for

pytestmark = needs_torch

TOKEN = "hf_e2eSecretTokenValue4f7c2a9d1e"
REPO = "acme/tiny-gated"
PADDING = "zz/padding.bin"  # sorts last; 11 MiB: three 5 MiB parts


def _files(folder: Path) -> dict[str, bytes | Synthetic]:
    found: dict[str, bytes | Synthetic] = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
    found[PADDING] = Synthetic(11 * 2**20, seed=5)
    return found


@pytest.fixture
def gated(cluster: Cluster, tiny_model_dir: Callable[[str], Path]) -> str:
    """The gated repo on the cluster's Hub (granted to the token's user); its main commit."""
    assert cluster.hub is not None
    cluster.hub.add_user("alice", TOKEN)
    cluster.hub.add_repo(REPO, gated=True, granted=("alice",))
    cluster.emulator.call_log.keep_requests()
    return cluster.hub.commit(REPO, _files(tiny_model_dir("feature-extraction")))


def _manifest(name: str, token: bool, **extra: Any) -> dict[str, Any]:
    model: dict[str, Any] = {"id": REPO, "snapshot": True, "properties": {"option.pooling": "mean"}}
    if token:
        model["tokenSecretRef"] = {"name": "hf-token", "key": "token"}
    return endpoint_manifest(name, model=model, **extra)


def _snapshot_keys(cluster: Cluster) -> list[str]:
    listing = cluster.s3.list_objects_v2(Bucket=BUCKET)
    return sorted(o["Key"] for o in listing.get("Contents", []) if "/snapshots/" in o["Key"])


def _served_from(cluster: Cluster, model_name: str) -> tuple[dict[str, Any], str]:
    """The model's description and the option.model_id of the serving.properties it mounts."""
    model = cluster.sagemaker.describe_model(ModelName=model_name)
    source = model["PrimaryContainer"]["ModelDataSource"]["S3DataSource"]
    bucket, _, prefix = source["S3Uri"].removeprefix("s3://").partition("/")
    properties = cluster.s3.get_object(Bucket=bucket, Key=f"{prefix}serving.properties")["Body"].read().decode()
    return model, javaprops.loads(properties)["option.model_id"]


def _owned_keys(cluster: Cluster, uid: str) -> list[str]:
    listing = cluster.s3.list_objects_v2(Bucket=BUCKET)
    return sorted(o["Key"] for o in listing.get("Contents", []) if f"/{uid}/" in o["Key"])


def _uploaded(cluster: Cluster, since: int = 0) -> int:
    ops = ("PutObject", "UploadPart")
    return sum(c.bytes for c in cluster.emulator.calls()[since:] if c.service == "s3" and c.operation in ops)


def _when(event: dict[str, Any]) -> str:
    return str(event.get("eventTime") or event.get("lastTimestamp") or event.get("firstTimestamp") or "")


def _grep_token(cluster: Cluster, name: str) -> dict[str, int]:
    requests = cluster.emulator.call_log.requests()
    assert len(requests) > 20  # the kept requests are the run's, SageMaker and S3 alike
    events = cluster.kubectl.run("get", "events", "-n", cluster.namespace, "-o", "json").stdout
    body = cluster.kubectl.run("get", "djlendpoint", name, "-n", cluster.namespace, "-o", "json").stdout
    return {
        "emulator requests": sum(r.count(TOKEN.encode()) for r in requests),
        "status": body.count(TOKEN),
        "events": events.count(TOKEN),
        "operator log": cluster.operator.log().count(TOKEN),
    }


def test_a_gated_model_stalls_without_the_token_then_snapshots_and_serves_isolated_from_s3(
    cluster: Cluster, gated: str, tiny_model_dir: Callable[[str], Path]
) -> None:
    assert cluster.hub is not None
    # Without a token: the Hub's 401 GatedRepo, Stalled until the spec changes; nothing is created.
    cluster.apply(_manifest("gated", token=False))
    stalled = cluster.wait_condition("gated", "Stalled", "HubAuthRequired")
    assert "401 GatedRepo" in stalled["message"] and "restricted" in stalled["message"]
    assert "spec.model.tokenSecretRef" in stalled["message"]
    assert cluster.model_names() == [] and _snapshot_keys(cluster) == []
    warnings = [e for e in cluster.wait_events("gated", "HubAuthRequired") if e["reason"] == "HubAuthRequired"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"

    # The token from a Secret; the big file held so the copy can be watched mid-way.
    cluster.kubectl.run(
        "create", "secret", "generic", "hf-token", "-n", cluster.namespace, f"--from-literal=token={TOKEN}"
    )
    release = cluster.hub.hold(PADDING)
    cluster.apply(_manifest("gated", token=True, model__networkIsolation=True))
    copying = wait_for(
        lambda: (s := cluster.status("gated").get("snapshot") or {}).get("filesDone", 0) >= 1 and s,
        timeout=60,
        what="the copy under way",
    )
    assert cluster.condition("gated", "Reconciling")["reason"] == "Snapshotting"
    assert copying["commit"] == gated and copying["progress"].endswith("%") and copying["progress"] != "100%"
    wide = cluster.kubectl.run("get", "djlendpoint", "gated", "-n", cluster.namespace, "-o", "wide").stdout
    assert "SNAPSHOT" in wide.splitlines()[0] and copying["progress"] in wide.splitlines()[1]
    release.set()
    ready = cluster.wait_ready("gated", timeout=120)

    prefix = f"djl-operator/{cluster.namespace}/gated/{cluster.get('gated')['metadata']['uid']}/snapshots/{gated}"
    uri = f"s3://{BUCKET}/{prefix}/"
    assert ready["snapshot"]["uri"] == uri and ready["snapshot"]["progress"] == "100%"
    files = _files(tiny_model_dir("feature-extraction"))
    assert ready["snapshot"]["filesDone"] == ready["snapshot"]["files"] == len(files)
    assert _snapshot_keys(cluster) == sorted([f"{prefix}.json", *(f"{prefix}/{path}" for path in files)])
    # The Model mounts the commit as its weights channel beside the artifact's uncompressed files,
    # and LMI loads the channel's directory: the container itself downloads nothing.
    uid = cluster.get("gated")["metadata"]["uid"]
    files_uri = f"s3://{BUCKET}/djl-operator/{cluster.namespace}/gated/{uid}/{ready['artifact']['sha256']}/model/"
    model, model_id = _served_from(cluster, ready["modelName"])
    assert model["EnableNetworkIsolation"] is True and "ModelDataUrl" not in model["PrimaryContainer"]
    prefix_source = {"S3DataType": "S3Prefix", "CompressionType": "None"}
    assert model["PrimaryContainer"]["ModelDataSource"] == {"S3DataSource": {"S3Uri": files_uri, **prefix_source}}
    assert model["PrimaryContainer"]["AdditionalModelDataSources"] == [
        {"ChannelName": "weights", "S3DataSource": {"S3Uri": uri, **prefix_source}}
    ]
    assert model_id == "/opt/ml/additional-model-data-sources/weights"
    assert ready["artifact"]["uri"] == files_uri
    # Each attempt announces itself; the first met the Hub's 401 at its first file.
    ours = ("SnapshotStarted", "SnapshotCompleted", "HubAuthRequired")
    reasons = [e["reason"] for e in sorted(cluster.wait_events("gated", *ours), key=_when) if e["reason"] in ours]
    assert reasons == ["SnapshotStarted", "HubAuthRequired", "SnapshotStarted", "SnapshotCompleted"]
    completed = next(e["message"] for e in cluster.events("gated") if e["reason"] == "SnapshotCompleted")
    assert "MiB in " in completed and "s (" in completed

    # Served from S3 only: the emulator's runtime lays out /opt/ml/model and the weights channel as
    # SageMaker does, and starts the model server isolated (no Hub address, Hub offline).
    hub_calls = len(cluster.hub.calls)
    endpoint = naming.endpoint_name(cluster.namespace, "gated")
    runtime = cluster.emulator.client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(
        EndpointName=endpoint, ContentType="application/json", Body=json.dumps({"inputs": "hello world"})
    )
    assert len(json.loads(answer["Body"].read())) == HIDDEN
    assert len(cluster.hub.calls) == hub_calls

    # A new generation of the same commit: nothing is copied again, the snapshot is kept.
    mark, hub_files = len(cluster.emulator.calls()), len(cluster.hub.requests("GET", "/resolve/"))
    cluster.apply(_manifest("gated", token=True, model__networkIsolation=True, instance__count=2))
    cluster.wait_ready("gated", timeout=60)
    assert _uploaded(cluster, since=mark) == 0  # neither the weights nor the model's files
    assert cluster.status("gated")["modelName"] == ready["modelName"]
    assert len(cluster.hub.requests("GET", "/resolve/")) == hub_files
    assert f"{prefix}/{PADDING}" in _snapshot_keys(cluster)

    assert _grep_token(cluster, "gated") == {"emulator requests": 0, "status": 0, "events": 0, "operator log": 0}
    assert {c.user for c in cluster.hub.calls if "/resolve/" in c.path} == {None, "alice"}

    cluster.delete("gated")
    assert _owned_keys(cluster, uid) == [] and cluster.model_names() == []
    assert cluster.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_an_operator_killed_mid_copy_resumes_without_copying_finished_files_again(cluster: Cluster, gated: str) -> None:
    assert cluster.hub is not None
    cluster.kubectl.run(
        "create", "secret", "generic", "hf-token", "-n", cluster.namespace, f"--from-literal=token={TOKEN}"
    )
    release = cluster.hub.hold(PADDING)
    cluster.apply(_manifest("resume", token=True))
    # Every file but the held one is in S3, and the held one's multipart upload has begun.
    wait_for(
        lambda: any(c.operation == "CreateMultipartUpload" for c in cluster.emulator.calls()),
        timeout=60,
        what="the big file's upload begun",
    )
    finished = [k for k in _snapshot_keys(cluster) if not k.endswith(PADDING)]
    assert len(finished) >= 3
    cluster.operator.kill()
    release.set()
    cluster.operator.start()
    cluster.wait_ready("resume", timeout=120)

    puts: dict[str, int] = {}
    for call in cluster.emulator.calls(service="s3", operation="PutObject"):
        if call.ok and call.principal == OPERATOR_ACCESS_KEY and "/snapshots/" in (call.resource or ""):
            puts[call.resource or ""] = puts.get(call.resource or "", 0) + 1
    assert all(puts[f"{BUCKET}/{key}"] == 1 for key in finished), puts
    assert len(cluster.emulator.calls(service="s3", operation="CompleteMultipartUpload")) == 1
    aborted = cluster.emulator.calls(service="s3", operation="AbortMultipartUpload")
    assert len(aborted) == 1 and aborted[0].ok  # the dead process's upload, aborted by the new one
    assert cluster.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    key = next(k for k in _snapshot_keys(cluster) if k.endswith(PADDING))
    assert cluster.s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == 11 * 2**20
    assert _grep_token(cluster, "resume") == {"emulator requests": 0, "status": 0, "events": 0, "operator log": 0}
