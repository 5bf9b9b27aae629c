"""Reconcile now, and event-driven status: the operator acts on a request or an endpoint event
at once instead of waiting for its next poll.

The operators here poll and resync rarely (minutes), so whatever happens within a test's
seconds happened because of the annotation or an event.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from djl_operator_kit.controlplane import ControlPlane
from tests.plugins.controlplane import Kubectl
from tests.plugins.operator import (
    BUCKET,
    OPERATOR_ENV,
    Cluster,
    OperatorProcess,
    clean_up,
    endpoint_manifest,
    wait_for,
)

REQUESTED_AT = "djl-operator.io/reconcile-requested-at"
# Minutes: nothing in a test's seconds comes from polling.
SLOW = {"DJL_OPERATOR_POLL_SECONDS": "600", "DJL_OPERATOR_RESYNC_SECONDS": "600"}


@pytest.fixture
def slow_cluster(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str, emulator: Any, tmp_path: Path
) -> Iterator[Cluster]:
    emulator.client("s3").create_bucket(Bucket=BUCKET)
    env = {**emulator.env, **OPERATOR_ENV, **SLOW}
    operator = OperatorProcess(control_plane, env, namespace, tmp_path / "operator.log").start()
    try:
        yield Cluster(kubectl, namespace, emulator, operator)
    finally:
        # The finalizer waits a poll interval between looks at a deleting endpoint: clean up at the test rate.
        operator.stop()
        operator.env.update(OPERATOR_ENV)
        operator.start()
        clean_up(kubectl, namespace, operator)


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
    _annotate(cluster, "clash", "retry-1")
    created = wait_for(lambda: cluster.emulator.calls("sagemaker", "CreateEndpoint"), what="CreateEndpoint")
    assert [c.resource for c in created] == ["taken"]
    cluster.wait_condition("clash", "Reconciling", "Creating")
    # The endpoint is InService at once (no delay here); the next poll is minutes away, so ask again.
    _annotate(cluster, "clash", "retry-2")
    cluster.wait_ready("clash", timeout=30)
