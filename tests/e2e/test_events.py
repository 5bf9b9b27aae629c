"""Reconcile now, event-driven status and shards: the operator acts on a request or an endpoint
event at once instead of waiting for its next poll, and several replicas share the resources.

The operators here poll and resync rarely (minutes) unless a test says otherwise, so whatever
happens within a test's seconds happened because of the annotation or an event. Events come
through the documented setup (an EventBridge rule -> an SQS queue with its policy), and the
emulator duplicates, reorders or drops them on demand: status must converge all the same.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from djl_operator.sharding import shard_of
from djl_operator_kit.controlplane import ControlPlane
from tests.plugins.controlplane import Kubectl
from tests.plugins.events import route_endpoint_events
from tests.plugins.iam import needed, policy_actions
from tests.plugins.operator import (
    BUCKET,
    OPERATOR_ACCESS_KEY,
    OPERATOR_ENV,
    Cluster,
    OperatorProcess,
    clean_up,
    delete_all,
    endpoint_manifest,
    wait_for,
)

REQUESTED_AT = "djl-operator.io/reconcile-requested-at"
# Minutes: nothing in a test's seconds comes from polling.
SLOW = {"DJL_OPERATOR_POLL_SECONDS": "600", "DJL_OPERATOR_RESYNC_SECONDS": "600"}


@contextlib.contextmanager
def _slow_operator(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str, emulator: Any, tmp_path: Path, **env: str
) -> Iterator[Cluster]:
    """A cluster whose operator polls and resyncs rarely (``env`` on top), started once as configured."""
    emulator.client("s3").create_bucket(Bucket=BUCKET)
    operator = OperatorProcess(
        control_plane, {**emulator.env, **OPERATOR_ENV, **SLOW, **env}, namespace, tmp_path / "operator.log"
    ).start()
    try:
        yield Cluster(kubectl, namespace, emulator, operator)
    finally:
        # A deletion usually ends in one finalizer run (the emulator deletes an endpoint at once and
        # the finalizer looks again right after deleting it); one that waits for a poll (an endpoint
        # still Creating, say) would wait the slow operator's minutes: restart it at the test rate.
        running = operator.proc is not None and operator.proc.poll() is None
        if not running or delete_all(kubectl, namespace, timeout=5):
            operator.stop()
            operator.env.update(OPERATOR_ENV)
            operator.start()
        clean_up(kubectl, namespace, operator)


@pytest.fixture
def slow_cluster(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str, emulator: Any, tmp_path: Path
) -> Iterator[Cluster]:
    with _slow_operator(control_plane, kubectl, namespace, emulator, tmp_path) as cluster:
        yield cluster


def _annotate(cluster: Cluster, name: str, value: str) -> None:
    cluster.kubectl.run(
        "annotate", "djlendpoint", name, "-n", cluster.namespace, "--overwrite", f"{REQUESTED_AT}={value}"
    )


def _describes(cluster: Cluster, endpoint: str) -> int:
    return len([c for c in cluster.emulator.calls("sagemaker", "DescribeEndpoint") if c.resource == endpoint])


def test_the_annotation_reconciles_at_once_once_per_value(slow_cluster: Cluster) -> None:
    cluster = slow_cluster
    cluster.emulator.faults.set(create_delay=1.0)
    cluster.apply(endpoint_manifest("now"))
    wait_for(lambda: cluster.emulator.calls("sagemaker", "CreateEndpoint"), what="CreateEndpoint")
    endpoint = cluster.status("now")["endpointName"]
    # The next poll is minutes away: only the request makes the operator look again.
    wait_for(lambda: (cluster.endpoint(endpoint) or {}).get("EndpointStatus") == "InService", what="InService")
    assert cluster.status("now")["phase"] == "Creating"
    before = _describes(cluster, endpoint)
    _annotate(cluster, "now", "2026-11-26T08:00:00Z")
    ready = cluster.wait_ready("now", timeout=20)
    assert ready["lastHandledReconcileAt"] == "2026-11-26T08:00:00Z"
    assert _describes(cluster, endpoint) == before + 1

    # The same value again asks for nothing; a new one is one more look.
    _annotate(cluster, "now", "2026-11-26T08:00:00Z")
    _annotate(cluster, "now", "2026-11-26T08:05:00Z")
    wait_for(lambda: cluster.status("now").get("lastHandledReconcileAt") == "2026-11-26T08:05:00Z", timeout=20)
    assert _describes(cluster, endpoint) == before + 2


def test_the_annotation_looks_again_at_a_stalled_resource(slow_cluster: Cluster) -> None:
    """A name conflict stalls until the spec changes; removing the other endpoint and asking is enough."""
    cluster = slow_cluster
    sm = cluster.sagemaker
    sm.create_model(
        ModelName="theirs",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/Other",
        PrimaryContainer={"Image": "example.com/other:1"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="theirs",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "theirs",
                "InstanceType": "ml.g5.2xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName="taken", EndpointConfigName="theirs")
    cluster.apply(endpoint_manifest("clash", endpointName="taken"))
    cluster.wait_condition("clash", "Stalled", "EndpointNameConflict")
    sm.delete_endpoint(EndpointName="taken")
    wait_for(lambda: cluster.endpoint("taken") is None, what="their endpoint gone")
    theirs = len(cluster.emulator.calls("sagemaker", "CreateEndpoint"))  # the test's own create
    _annotate(cluster, "clash", "retry-1")
    # The endpoint is InService at once (no delay here): the look right after the create sees it.
    ready = cluster.wait_ready("clash", timeout=30)
    assert ready["lastHandledReconcileAt"] == "retry-1"
    assert [c.resource for c in cluster.emulator.calls("sagemaker", "CreateEndpoint")[theirs:]] == ["taken"]


# -- endpoint events ----------------------------------------------------------------


@pytest.fixture
def events_cluster(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str, emulator: Any, tmp_path: Path
) -> Iterator[Cluster]:
    """The slow operator, started with the events queue the README's setup creates."""
    queue = route_endpoint_events(emulator)
    events = {"DJL_OPERATOR_EVENTS_QUEUE_URL": queue, "DJL_OPERATOR_EVENTS_POLL_SECONDS": "600"}
    with _slow_operator(control_plane, kubectl, namespace, emulator, tmp_path, **events) as cluster:
        yield cluster


def _queue_drained(cluster: Cluster) -> bool:
    """Every event delivered and every message the operator received deleted."""
    assert cluster.emulator.events.wait_idle()
    sqs = cluster.emulator.client("sqs")
    url = cluster.operator.env["DJL_OPERATOR_EVENTS_QUEUE_URL"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return all(attributes[n] == "0" for n in names)


def _converged(cluster: Cluster, name: str, generation: int) -> dict[str, Any]:
    """Ready at ``generation``, every event handled, and status the truth SageMaker tells."""
    status = cluster.wait_ready(name, timeout=30)
    wait_for(lambda: _queue_drained(cluster), timeout=30, what="the events queue drained")
    status = cluster.status(name)
    described = cluster.sagemaker.describe_endpoint(EndpointName=status["endpointName"])
    assert status["observedGeneration"] == generation
    assert status["endpointStatus"] == described["EndpointStatus"] == "InService"
    assert status["endpointConfigName"] == status["desiredEndpointConfigName"] == described["EndpointConfigName"]
    assert cluster.condition(name, "Ready")["status"] == "True"
    return status


def _create_then_update(cluster: Cluster, name: str) -> None:
    cluster.emulator.faults.set(create_delay=1.0, update_delay=1.0)
    cluster.apply(endpoint_manifest(name))
    first = _converged(cluster, name, 1)
    cluster.apply(endpoint_manifest(name, instance__count=2))
    second = _converged(cluster, name, 2)
    assert second["endpointConfigName"] != first["endpointConfigName"]
    ops = [c.operation for c in cluster.emulator.calls("sagemaker")]
    assert ops.count("CreateEndpoint") == 1 and ops.count("UpdateEndpoint") == 1


def test_an_event_makes_status_ready_at_once(events_cluster: Cluster) -> None:
    cluster = events_cluster
    cluster.emulator.faults.set(create_delay=2.0)
    cluster.apply(endpoint_manifest("ev"))
    wait_for(lambda: cluster.emulator.calls("sagemaker", "CreateEndpoint"), what="CreateEndpoint")
    endpoint = cluster.status("ev")["endpointName"]
    in_service = wait_for(
        lambda: (cluster.endpoint(endpoint) or {}).get("EndpointStatus") == "InService" and time.time(), timeout=20
    )
    cluster.wait_ready("ev", timeout=10)
    took = time.time() - in_service
    # The next poll is 10 minutes away: only the IN_SERVICE event can have made it Ready.
    assert took < 5, took
    describes = [
        c
        for c in cluster.emulator.calls("sagemaker", "DescribeEndpoint")
        if c.resource == endpoint and c.principal == OPERATOR_ACCESS_KEY
    ]
    assert 2 <= len(describes) <= 3, describes  # the first look, then one for each event (CREATING, IN_SERVICE)
    ours = {(c.service, c.operation) for c in cluster.emulator.calls() if c.principal == OPERATOR_ACCESS_KEY}
    assert {("sqs", "GetQueueAttributes"), ("sqs", "ReceiveMessage"), ("sqs", "DeleteMessageBatch")} <= ours


def test_duplicated_events_converge(events_cluster: Cluster) -> None:
    events_cluster.emulator.events.set_faults(duplicate=1.0)
    _create_then_update(events_cluster, "dup")
    assert events_cluster.emulator.events.counts.duplicated >= 4


def test_reordered_events_converge(events_cluster: Cluster) -> None:
    events_cluster.emulator.events.set_faults(reorder=1.0)
    _create_then_update(events_cluster, "late")
    assert events_cluster.emulator.events.counts.reordered >= 2


def test_dropped_events_converge_through_the_batched_read(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str, emulator: Any, tmp_path: Path
) -> None:
    """Every event lost: the batched status read (ListEndpoints, every 2 s here) finds the change."""
    env = {
        "DJL_OPERATOR_STATUS_READ_SECONDS": "2",
        "DJL_OPERATOR_EVENTS_QUEUE_URL": route_endpoint_events(emulator),
        "DJL_OPERATOR_EVENTS_POLL_SECONDS": "600",
    }
    with _slow_operator(control_plane, kubectl, namespace, emulator, tmp_path, **env) as cluster:
        emulator.events.set_faults(drop=1.0)
        _create_then_update(cluster, "lost")
        assert emulator.events.counts.delivered == 0 and emulator.events.counts.dropped >= 4
        assert emulator.calls("sagemaker", "ListEndpoints")


# -- shards -------------------------------------------------------------------------


def test_three_shards_reconcile_every_resource_exactly_once(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str, emulator: Any, tmp_path: Path
) -> None:
    emulator.client("s3").create_bucket(Bucket=BUCKET)
    shards = []
    for index in range(3):
        env = {**emulator.env, **OPERATOR_ENV, "AWS_ACCESS_KEY_ID": f"{OPERATOR_ACCESS_KEY}-shard-{index}"}
        shard = OperatorProcess(control_plane, env, namespace, tmp_path / f"shard-{index}.log")
        shard.extra_args = ["--shard-index", str(index), "--shard-count", "3"]
        shards.append(shard.start())
    cluster = Cluster(kubectl, namespace, emulator, shards[0])
    try:
        names = [f"s{i}" for i in range(9)]
        for name in names:
            cluster.apply(endpoint_manifest(name))
        statuses = {name: cluster.wait_ready(name, timeout=90) for name in names}
        uids = {name: cluster.get(name)["metadata"]["uid"] for name in names}  # type: ignore[index]
        owner = {statuses[n]["endpointName"]: f"{OPERATOR_ACCESS_KEY}-shard-{shard_of(uids[n], 3)}" for n in names}
        assert len(set(owner.values())) > 1  # the resources really were spread

        creates = [c for c in emulator.calls("sagemaker", "CreateEndpoint") if c.ok]
        assert sorted(c.resource for c in creates) == sorted(owner)  # each endpoint created exactly once
        for call in creates:
            assert call.principal == owner[call.resource], (call.resource, call.principal)
        # Nobody else ever looked at a resource's endpoint: exactly one replica reconciles each.
        for call in emulator.calls("sagemaker"):
            if call.resource in owner:
                assert call.principal in (owner[call.resource], "testing"), call
        # Each replica's calls are within the operator's IAM policy, like the single operator's.
        for shard_key in set(owner.values()):
            calls = {(c.service, c.operation) for c in emulator.calls() if c.principal == shard_key}
            assert not needed(calls) - policy_actions(), calls
        # Each resource carries its own shard's finalizer alone: no shard strips another's.
        for name in names:
            finalizers = cluster.get(name)["metadata"]["finalizers"]  # type: ignore[index]
            assert finalizers == [f"serving.djl-operator.io/finalizer-shard-{shard_of(uids[name], 3)}"], finalizers
    finally:
        clean_up(kubectl, namespace, *shards, timeout=60)
    # Every shard ran its finalizers: nothing is left billing.
    assert cluster.endpoint_names() == [] and cluster.model_names() == [] and cluster.config_names() == []


def _start_shards(
    control_plane: ControlPlane, emulator: Any, namespace: str, tmp_path: Path, count: int, phase: str
) -> list[OperatorProcess]:
    """``count`` shard processes, each signing its AWS calls with its own key (<phase>-shard-<i>)."""
    shards = []
    for index in range(count):
        key = f"{OPERATOR_ACCESS_KEY}-{phase}-shard-{index}"
        env = {**emulator.env, **OPERATOR_ENV, "AWS_ACCESS_KEY_ID": key}
        shard = OperatorProcess(control_plane, env, namespace, tmp_path / f"{phase}-shard-{index}.log")
        shard.extra_args = ["--shard-index", str(index), "--shard-count", str(count)]
        shards.append(shard.start())
    return shards


@pytest.mark.parametrize(("before", "after"), [(2, 3), (3, 2)])
def test_resharding_moves_every_finalizer_to_the_new_shard(
    control_plane: ControlPlane,
    kubectl: Kubectl,
    namespace: str,
    emulator: Any,
    tmp_path: Path,
    before: int,
    after: int,
) -> None:
    """Changing the shard count: each resource ends with its new shard's finalizer alone, with no
    manual step; one deleted while no replica ran is finalized by its new shard; every delete finishes."""
    emulator.client("s3").create_bucket(Bucket=BUCKET)
    old = _start_shards(control_plane, emulator, namespace, tmp_path, before, "old")
    cluster = Cluster(kubectl, namespace, emulator, old[0])
    new: list[OperatorProcess] = []
    try:
        # Enough resources that some move to another shard (the API server picks the uids: keep creating).
        uids: dict[str, str] = {}
        while len(uids) < 12 and (
            len(uids) < 4 or sum(shard_of(u, before) != shard_of(u, after) for u in uids.values()) < 2
        ):
            name = f"r{len(uids)}"
            cluster.apply(endpoint_manifest(name))
            uids[name] = cluster.get(name)["metadata"]["uid"]  # type: ignore[index]
        moved = [n for n, u in uids.items() if shard_of(u, before) != shard_of(u, after)]
        assert len(moved) >= 2, uids
        statuses = {name: cluster.wait_ready(name, timeout=90) for name in uids}
        endpoints = {name: statuses[name]["endpointName"] for name in uids}
        for old_shard in old:
            old_shard.stop()

        # Deleted while no replica runs: only its old shard's finalizer holds it.
        lost = moved[0]
        cluster.delete(lost, wait=False)
        assert cluster.get(lost)["metadata"]["finalizers"] == [  # type: ignore[index]
            f"serving.djl-operator.io/finalizer-shard-{shard_of(uids[lost], before)}"
        ]

        new = _start_shards(control_plane, emulator, namespace, tmp_path, after, "new")
        cluster.operator = new[0]
        owner = {n: f"{OPERATOR_ACCESS_KEY}-new-shard-{shard_of(u, after)}" for n, u in uids.items()}
        kept = [n for n in uids if n != lost]

        def adopted() -> bool:
            return all(
                (cluster.get(n) or {}).get("metadata", {}).get("finalizers")
                == [f"serving.djl-operator.io/finalizer-shard-{shard_of(uids[n], after)}"]
                for n in kept
            )

        wait_for(adopted, timeout=30, what="every resource carrying its new shard's finalizer alone")
        wait_for(lambda: cluster.get(lost) is None, timeout=30, what=f"{lost} finalized by its new shard")
        assert cluster.endpoint(endpoints[lost]) is None
        assert [c.principal for c in emulator.calls("sagemaker", "DeleteEndpoint") if c.ok] == [owner[lost]]

        def deleted_events() -> list[dict[str, Any]]:
            return [e for e in cluster.events(lost) if e["reason"] == "Deleted"]

        wait_for(deleted_events, timeout=10, what=f"{lost}'s Deleted event")

        # Nothing was created twice, and since the reshard only each resource's new shard looked at it.
        for operation in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"):
            creates = [c.resource for c in emulator.calls("sagemaker", operation) if c.ok]
            assert len(creates) == len(set(creates)) == len(uids), (operation, creates)
        by_endpoint = {endpoints[n]: n for n in uids}
        for call in emulator.calls("sagemaker"):
            if call.resource in by_endpoint and (call.principal or "").startswith(f"{OPERATOR_ACCESS_KEY}-new-"):
                assert call.principal == owner[by_endpoint[call.resource]], call
        for name in kept:  # the generation reconciled before the reshard, not accepted again
            assert cluster.status(name)["observedGeneration"] == 1

        clean_up(kubectl, namespace, *new, timeout=60)  # fails the test if any finalizer stays
        # Posted once (events on transitions only), though more events came while the resource went.
        assert [e.get("count", 1) for e in deleted_events()] == [1], deleted_events()
    finally:
        for shard in old:
            shard.stop()
        clean_up(kubectl, namespace, *new, timeout=30)
    assert cluster.endpoint_names() == [] and cluster.model_names() == [] and cluster.config_names() == []
