"""manifests/ (the kustomize install base) rendered, checked, and dry-run against a real API server."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from djl_operator import crd, policy
from djl_operator_kit.controlplane import ControlPlane, kubectl_path
from tests.plugins.controlplane import Kubectl
from tests.plugins.operator import install_peering_crds

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
NAMESPACE = "djl-operator-system"
LIVENESS_PORT, LIVENESS_PATH = 8080, "/healthz"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    rendered = subprocess.run(
        [kubectl_path(), "kustomize", str(MANIFESTS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def test_crd_copy_is_current() -> None:
    """kustomize refuses ../crds, so the base holds a copy (`make crd` writes every copy)."""
    copied = (MANIFESTS / "crds" / "djlendpoint.yaml").read_text()
    assert copied == crd.render_yaml()
    assert copied == (REPO / "crds" / "djlendpoint.yaml").read_text()


def test_base_holds_every_piece(objects: list[dict[str, Any]]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert kinds == sorted(
        [
            ("Namespace", NAMESPACE),
            ("CustomResourceDefinition", "djlendpoints.serving.djl-operator.io"),
            ("CustomResourceDefinition", "clusterkopfpeerings.kopf.dev"),
            ("CustomResourceDefinition", "kopfpeerings.kopf.dev"),
            ("ClusterKopfPeering", "djl-operator"),
            ("ServiceAccount", "djl-operator"),
            ("ClusterRole", "djl-operator"),
            ("ClusterRoleBinding", "djl-operator"),
            ("ClusterRole", "djlendpoint-editor"),
            ("ClusterRole", "djlendpoint-viewer"),
            ("Deployment", "djl-operator"),
            ("ConfigMap", "djl-operator-policy"),
        ]
    )
    for obj in objects:
        if obj["kind"] in ("ServiceAccount", "Deployment"):
            assert obj["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize(
    ("role", "aggregates_to", "verbs"),
    [
        ("djlendpoint-editor", {"admin", "edit"}, {"get", "list", "watch", "create", "update", "patch", "delete"}),
        ("djlendpoint-viewer", {"view"}, {"get", "list", "watch"}),
    ],
)
def test_tenant_roles_never_grant_status(
    objects: list[dict[str, Any]], role: str, aggregates_to: set[str], verbs: set[str]
) -> None:
    cluster_role = find(objects, "ClusterRole", role)
    labels = cluster_role["metadata"]["labels"]
    assert {k.rsplit("-", 1)[1] for k, v in labels.items() if k.startswith("rbac.authorization.k8s.io/aggregate-to-")
            and v == "true"} == aggregates_to  # fmt: skip
    for rule in cluster_role["rules"]:
        assert rule["apiGroups"] == ["serving.djl-operator.io"]
        assert rule["resources"] in (["djlendpoints"], ["djlendpoints/scale"]), "status is the operator's report"
    assert verbs <= {v for r in cluster_role["rules"] for v in r["verbs"]}
    scale = {v for r in cluster_role["rules"] if r["resources"] == ["djlendpoints/scale"] for v in r["verbs"]}
    assert scale == ({"get", "update", "patch"} if "update" in verbs else {"get"})  # kubectl scale for editors


def test_shipped_policy_is_the_safe_default_and_mounted(objects: list[dict[str, Any]]) -> None:
    config = find(objects, "ConfigMap", "djl-operator-policy")
    assert config["metadata"]["namespace"] == NAMESPACE
    assert policy.Policy.model_validate(yaml.safe_load(config["data"]["policy.yaml"])) == policy.Policy()
    container = _container(objects)
    path = next(e["value"] for e in container["env"] if e["name"] == policy.POLICY_FILE_ENV)
    mount = next(m for m in container["volumeMounts"] if m["name"] == "policy")
    assert path == f"{mount['mountPath']}/policy.yaml" and mount["readOnly"] is True
    volumes = find(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    volume = next(v for v in volumes if v["name"] == "policy")
    assert volume["configMap"]["name"] == "djl-operator-policy"


def test_service_account_carries_the_irsa_role(objects: list[dict[str, Any]]) -> None:
    account = find(objects, "ServiceAccount")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    binding = find(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "djl-operator", "namespace": NAMESPACE}]
    assert binding["roleRef"]["name"] == find(objects, "ClusterRole", "djl-operator")["metadata"]["name"]


def test_cluster_role_has_no_wildcards_and_reads_secrets_only_by_name(objects: list[dict[str, Any]]) -> None:
    for rule in find(objects, "ClusterRole", "djl-operator")["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        if "secrets" in rule["resources"]:
            # spec.model.tokenSecretRef: one GET of the Secret named; never a list or watch of them all.
            assert (rule["apiGroups"], rule["resources"], rule["verbs"]) == ([""], ["secrets"], ["get"]), rule
            continue
        assert not {"configmaps", "pods"} & set(rule["resources"]), rule
        if rule["resources"] == ["events"]:
            assert rule["verbs"] == ["create"]
        else:
            assert set(rule["verbs"]) <= {"get", "list", "watch", "patch"}, rule


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_deployment_is_restricted_and_peered(objects: list[dict[str, Any]]) -> None:
    deployment = find(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(objects)
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    # Leader election: peering on the shipped ClusterKopfPeering, never --standalone.
    args = container["args"]
    assert "--standalone" not in args
    assert args[args.index("--peering") + 1] == find(objects, "ClusterKopfPeering")["metadata"]["name"]
    assert deployment["spec"]["replicas"] == 2


def test_probes_hit_the_images_liveness_endpoint(objects: list[dict[str, Any]]) -> None:
    container = _container(objects)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == LIVENESS_PATH
        assert ports[get["port"]] == LIVENESS_PORT
    entrypoint = next(line for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("ENTRYPOINT"))
    assert json.loads(entrypoint.partition(" ")[2])[-1] == f"http://0.0.0.0:{LIVENESS_PORT}{LIVENESS_PATH}"


@pytest.fixture(scope="module")
def prerequisites(control_plane: ControlPlane) -> Iterator[None]:
    """What a dry run cannot create for the rest of the base: its namespace and the peering CRDs.

    A server-side dry run persists nothing, so objects in a namespace (or of a kind) that the same
    apply would create cannot be checked; a real first install applies these first too.
    """
    kubectl = Kubectl(control_plane)
    kubectl.run("apply", "--server-side", "-f", str(MANIFESTS / "namespace.yaml"))
    install_peering_crds(kubectl)
    yield


def test_server_side_dry_run_succeeds(kubectl: Kubectl, prerequisites: None) -> None:
    result = kubectl.run("apply", "-k", str(MANIFESTS), "--dry-run=server", check=False)
    assert result.returncode == 0, result.stderr
    for applied in (
        "deployment.apps/djl-operator",
        "clusterrole.rbac.authorization.k8s.io/djl-operator",
        "clusterkopfpeering.kopf.dev/djl-operator",
        "serviceaccount/djl-operator",
    ):
        assert applied in result.stdout, result.stdout
    assert "PodSecurity" not in result.stderr, result.stderr


def _pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    template = copy.deepcopy(find(objects, "Deployment")["spec"]["template"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "djl-operator-psa-probe", "namespace": NAMESPACE, **template["metadata"]},
        "spec": template["spec"],
    }


def test_pod_passes_the_restricted_pod_security_standard(
    kubectl: Kubectl, objects: list[dict[str, Any]], prerequisites: None
) -> None:
    # The namespace (now applied) enforces the restricted standard on pods.
    result = kubectl.run("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(_pod(objects)), check=False)
    assert result.returncode == 0, result.stderr

    # The same pod without its hardening is refused, so the check above is real.
    loose = _pod(objects)
    del loose["spec"]["securityContext"]
    del loose["spec"]["containers"][0]["securityContext"]
    refused = kubectl.run("create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(loose), check=False)
    assert refused.returncode != 0
    assert "PodSecurity" in refused.stderr
