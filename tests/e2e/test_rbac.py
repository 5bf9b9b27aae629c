"""The operator as deployed: manifests/ applied, the ServiceAccount's token, RBAC enforced.

Two replicas run cluster-wide with kopf peering (no ``--standalone``), authenticated as the
manifests' ServiceAccount, so the ClusterRole is proven sufficient for a whole lifecycle
(create -> Ready -> delete through the finalizer), the lower-priority replica is shown to stay
paused while the leader works and to take over when it stops, and calls outside the role
are refused.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from djl_operator_kit.controlplane import ControlPlane, free_port
from djl_operator_kit.hub import LocalHub
from tests.plugins.controlplane import Kubectl
from tests.plugins.operator import (
    BUCKET,
    MANIFESTS,
    OPERATOR_ENV,
    Cluster,
    OperatorProcess,
    clean_up,
    endpoint_manifest,
    install_peering_crds,
    wait_for,
)

SYSTEM_NAMESPACE = "djl-operator-system"
SERVICE_ACCOUNT = "djl-operator"


def install_operator_base(kubectl: Kubectl) -> None:
    """What a cluster admin does: peering CRDs first (the base holds an object of theirs), then the base."""
    install_peering_crds(kubectl)
    kubectl.run("apply", "--server-side", "-k", str(MANIFESTS))


@pytest.fixture
def sa_kubeconfig(control_plane: ControlPlane, kubectl: Kubectl) -> Path:
    install_operator_base(kubectl)
    return control_plane.service_account_kubeconfig(SYSTEM_NAMESPACE, SERVICE_ACCOUNT)


def _replica(
    control_plane: ControlPlane,
    emulator: Any,
    namespace: str,
    kubeconfig: Path,
    log: Path,
    pod: str,
    priority: int,
    hub: LocalHub,
) -> OperatorProcess:
    env = {**emulator.env, **OPERATOR_ENV, "POD_ID": pod, "HF_ENDPOINT": hub.url}
    replica = OperatorProcess(control_plane, env, namespace, log, kubeconfig=kubeconfig)
    # As in manifests/deployment.yaml, plus a fixed priority so the test knows who leads.
    replica.scope_args = ["--all-namespaces", "--peering", "djl-operator", "--priority", str(priority)]
    return replica


@dataclass
class Replicas:
    leader: OperatorProcess
    follower: OperatorProcess
    liveness_port: int
    hub: LocalHub


@pytest.fixture
def replicas(
    control_plane: ControlPlane, kubectl: Kubectl, namespace: str, emulator: Any, sa_kubeconfig: Path, tmp_path: Path
) -> Iterator[Replicas]:
    emulator.client("s3").create_bucket(Bucket=BUCKET)
    hub = LocalHub().start()
    logs = tmp_path / "follower.log", tmp_path / "leader.log"
    follower = _replica(control_plane, emulator, namespace, sa_kubeconfig, logs[0], "replica-b", 10, hub)
    leader = _replica(control_plane, emulator, namespace, sa_kubeconfig, logs[1], "replica-a", 20, hub)
    port = free_port()
    leader.extra_args = ["--liveness", f"http://127.0.0.1:{port}/healthz"]
    try:
        follower.start()
        leader.start()
        yield Replicas(leader, follower, port, hub)
    finally:
        clean_up(kubectl, namespace, leader, follower)
        hub.stop()


def _paused(replica: OperatorProcess) -> bool:
    """kopf starts paused until peering clears it, and logs each toggle; equal counts mean paused now."""
    log = replica.log()
    return log.count("Pausing operations") == log.count("Resuming operations")


def _peers(kubectl: Kubectl) -> set[str]:
    peering = kubectl.get_json("clusterkopfpeering", "djl-operator")
    return {pod for pod, info in (peering.get("status") or {}).items() if info}


def _healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return int(resp.status)
    except OSError:
        return 0


def test_operator_reconciles_with_only_its_cluster_role(
    replicas: Replicas, kubectl: Kubectl, namespace: str, emulator: Any
) -> None:
    leader, follower = replicas.leader, replicas.follower
    cluster = Cluster(kubectl, namespace, emulator, leader)

    # Both replicas registered in the peering object; the leader works, the follower stays paused.
    wait_for(lambda: _peers(kubectl) == {"replica-a", "replica-b"}, timeout=60, what="both replicas peering")
    wait_for(lambda: not _paused(leader), timeout=30, what="the leader to start working")
    assert _paused(follower), follower.log()[-3000:]
    wait_for(lambda: _healthz(replicas.liveness_port) == 200, timeout=30, what="the leader's liveness endpoint")

    # spec.model.tokenSecretRef: the role's `get` on secrets reads the token of a gated model.
    replicas.hub.add_user("alice", "hf_rbacTestToken1234567890")
    replicas.hub.add_repo("acme/gated", gated=True, granted=("alice",))
    replicas.hub.commit("acme/gated", {"config.json": b"{}"})
    kubectl.run("create", "secret", "generic", "hf", "-n", namespace, "--from-literal=token=hf_rbacTestToken1234567890")
    gated = {"id": "acme/gated", "snapshot": True, "tokenSecretRef": {"name": "hf", "key": "token"}}
    cluster.apply(endpoint_manifest("rbac-gated", model=gated))
    cluster.apply(endpoint_manifest("rbac-demo"))
    assert cluster.wait_ready("rbac-gated")["snapshot"]["progress"] == "100%"
    cluster.delete("rbac-gated", timeout=60)
    status = cluster.wait_ready("rbac-demo")
    assert status["endpointStatus"] == "InService"
    assert cluster.endpoint_names() == [status["endpointArn"].rsplit("/", 1)[1]]
    # Handler messages name the endpoint; the paused replica has none.
    assert "rbac-demo" in leader.log()
    assert _paused(follower)
    assert "rbac-demo" not in follower.log(), f"the paused replica reconciled too:\n{follower.log()[-3000:]}"

    # The leader goes away gracefully (it leaves the peering object); the follower takes over
    # and runs the finalizer.
    leader.stop()
    wait_for(lambda: not _paused(follower), timeout=60, what="the follower to take over")
    cluster.operator = follower
    cluster.delete("rbac-demo", timeout=60)
    assert cluster.endpoint_names() == []
    assert cluster.model_names() == []
    assert cluster.config_names() == []

    for replica in (leader, follower):
        log = replica.log()
        # A cluster-wide operator also sees other tests' resources; a 403 for an event in a namespace
        # being deleted is the API server's NamespaceTerminating answer, not an RBAC refusal.
        lines = "\n".join(line for line in log.splitlines() if "because it is being terminated" not in line)
        for refusal in ("Forbidden", "forbidden", "Not enough permissions", " 403"):
            assert refusal not in lines, f"{replica.log_path.name} shows an RBAC refusal:\n{log[-3000:]}"


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("watch", "djlendpoints.serving.djl-operator.io", True),
        ("patch", "djlendpoints.serving.djl-operator.io/status", True),
        ("create", "events", True),
        ("patch", "clusterkopfpeerings.kopf.dev", True),
        ("list", "customresourcedefinitions.apiextensions.k8s.io", True),
        ("get", "secrets", True),
        ("list", "secrets", False),
        ("watch", "secrets", False),
        ("list", "configmaps", False),
        ("create", "djlendpoints.serving.djl-operator.io", False),
        ("delete", "djlendpoints.serving.djl-operator.io", False),
        ("update", "customresourcedefinitions.apiextensions.k8s.io", False),
        ("create", "pods", False),
        ("delete", "clusterkopfpeerings.kopf.dev", False),
    ],
)
def test_service_account_may_do_only_what_the_role_grants(
    control_plane: ControlPlane, sa_kubeconfig: Path, namespace: str, verb: str, resource: str, allowed: bool
) -> None:
    subresource = ""
    if "/" in resource:
        resource, subresource = resource.split("/")
    args = ["auth", "can-i", verb, resource, "-n", namespace]
    if subresource:
        args.append(f"--subresource={subresource}")
    answer = control_plane.kubectl(*args, kubeconfig=sa_kubeconfig, check=False)
    assert answer.stdout.strip() == ("yes" if allowed else "no"), (args, answer.stdout, answer.stderr)


def test_call_outside_the_role_is_refused(control_plane: ControlPlane, sa_kubeconfig: Path, namespace: str) -> None:
    refused = control_plane.kubectl("get", "secrets", "-n", namespace, kubeconfig=sa_kubeconfig, check=False)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower()
    assert f"system:serviceaccount:{SYSTEM_NAMESPACE}:{SERVICE_ACCOUNT}" in refused.stderr
