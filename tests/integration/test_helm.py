"""The Helm charts (charts/), checked with a real helm built from its Go module
(scripts/build-helm.sh): lint, template, the same install as the kustomize base
(manifests/), and a server-side dry run of the rendered output on a real API server."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from djl_operator import crd, policy
from djl_operator_kit.controlplane import kubectl_path
from tests.plugins.controlplane import Kubectl
from tests.plugins.operator import install_peering_crds

REPO = Path(__file__).resolve().parents[2]
OPERATOR_CHART = REPO / "charts" / "djl-operator"
CRD_CHART = REPO / "charts" / "djl-operator-crds"
NAMESPACE = "djl-operator-system"
# The kustomize base's placeholder role, so the two installs can be compared.
ROLE_ARN = "arn:aws:iam::111122223333:role/djl-operator"


@pytest.fixture(scope="module")
def helm() -> str:
    built = subprocess.run(
        [str(REPO / "scripts" / "build-helm.sh")], capture_output=True, text=True, check=True, timeout=600
    )
    return built.stdout.strip().splitlines()[-1]


def template(helm: str, chart: Path, *args: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    result = subprocess.run(
        [helm, "template", "djl-operator", str(chart), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


@pytest.fixture(scope="module")
def kustomized() -> list[dict[str, Any]]:
    rendered = subprocess.run(
        [kubectl_path(), "kustomize", str(REPO / "manifests")], capture_output=True, text=True, timeout=60, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


@pytest.fixture(scope="module")
def charted(helm: str) -> list[dict[str, Any]]:
    return template(helm, OPERATOR_CHART, "--set", f"irsa.roleArn={ROLE_ARN}", "--set", "namespace.create=true")


@pytest.mark.parametrize("chart", [OPERATOR_CHART, CRD_CHART], ids=lambda p: p.name)
def test_helm_lint_is_clean(helm: str, chart: Path) -> None:
    result = subprocess.run(
        [helm, "lint", "--strict", str(chart)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_crd_chart_is_the_shipped_crds_kept_on_uninstall(helm: str) -> None:
    rendered = template(helm, CRD_CHART)
    expected = [
        doc
        for path in sorted((REPO / "manifests" / "crds").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    assert {o["metadata"]["name"] for o in rendered} == {o["metadata"]["name"] for o in expected}
    for obj in rendered:
        annotations = obj["metadata"].pop("annotations")
        # Uninstalling the chart must not delete every DjlEndpoint (and, by finalizer, its endpoint).
        assert annotations.pop("helm.sh/resource-policy") == "keep"
        original = next(o for o in expected if o["metadata"]["name"] == obj["metadata"]["name"])
        assert annotations == original["metadata"].get("annotations", {})
        assert obj == {**original, "metadata": {k: v for k, v in original["metadata"].items() if k != "annotations"}}
    assert yaml.safe_load((CRD_CHART / "files" / "djlendpoint.yaml").read_text()) == yaml.safe_load(
        crd.shipped_yaml()
    ), "charts/djl-operator-crds/files/djlendpoint.yaml is stale: run `make crd`"
    assert find(template(helm, CRD_CHART, "--set", "keep=false"), "CustomResourceDefinition", "kopfpeerings.kopf.dev")[
        "metadata"
    ].get("annotations", {}) == {"argocd.argoproj.io/sync-wave": "-1"}


def test_chart_installs_what_the_kustomize_base_installs(
    kustomized: list[dict[str, Any]], charted: list[dict[str, Any]]
) -> None:
    base = {(o["kind"], o["metadata"]["name"]) for o in kustomized if o["kind"] != "CustomResourceDefinition"}
    assert {(o["kind"], o["metadata"]["name"]) for o in charted} == base
    for obj in charted:
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "djl-operator"


def test_rbac_matches_the_kustomize_base(kustomized: list[dict[str, Any]], charted: list[dict[str, Any]]) -> None:
    for name in ("djl-operator", "djlendpoint-editor", "djlendpoint-viewer"):
        ours, theirs = find(charted, "ClusterRole", name), find(kustomized, "ClusterRole", name)
        assert ours["rules"] == theirs["rules"], name
        aggregation = {k: v for k, v in theirs["metadata"].get("labels", {}).items() if k.startswith("rbac.")}
        assert aggregation.items() <= ours["metadata"]["labels"].items(), name
    ours, theirs = find(charted, "ClusterRoleBinding"), find(kustomized, "ClusterRoleBinding")
    assert (ours["roleRef"], ours["subjects"]) == (theirs["roleRef"], theirs["subjects"])
    ours, theirs = find(charted, "ServiceAccount"), find(kustomized, "ServiceAccount")
    assert ours["metadata"]["annotations"] == theirs["metadata"]["annotations"]
    ours, theirs = find(charted, "Namespace"), find(kustomized, "Namespace")
    psa = {k: v for k, v in theirs["metadata"]["labels"].items() if k.startswith("pod-security.")}
    assert psa and psa.items() <= ours["metadata"]["labels"].items()


def _comparable_pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    """The pod spec without what only Helm adds: the release's instance label in selectors."""
    spec = copy.deepcopy(deployment["spec"]["template"]["spec"])
    for constraint in spec.get("topologySpreadConstraints", []):
        constraint["labelSelector"]["matchLabels"].pop("app.kubernetes.io/instance", None)
    container = spec["containers"][0]
    container.pop("imagePullPolicy", None)
    return spec


def test_deployment_matches_the_kustomize_base(kustomized: list[dict[str, Any]], charted: list[dict[str, Any]]) -> None:
    ours, theirs = find(charted, "Deployment"), find(kustomized, "Deployment")
    assert ours["spec"]["replicas"] == theirs["spec"]["replicas"]
    assert theirs["spec"]["selector"]["matchLabels"].items() <= ours["spec"]["selector"]["matchLabels"].items()
    assert _comparable_pod_spec(ours) == _comparable_pod_spec(theirs)
    assert (
        find(charted, "ClusterKopfPeering")["metadata"]["name"]
        == find(kustomized, "ClusterKopfPeering")["metadata"]["name"]
    )
    ours_policy, theirs_policy = find(charted, "ConfigMap"), find(kustomized, "ConfigMap")
    assert ours_policy["metadata"]["name"] == theirs_policy["metadata"]["name"]
    assert policy.Policy.model_validate(
        yaml.safe_load(ours_policy["data"]["policy.yaml"])
    ) == policy.Policy.model_validate(yaml.safe_load(theirs_policy["data"]["policy.yaml"]))
    mount = next(m for m in _container(charted)["volumeMounts"] if m["name"] == "policy")
    env = {e["name"]: e.get("value") for e in _container(charted)["env"]}
    assert env[policy.POLICY_FILE_ENV] == f"{mount['mountPath']}/policy.yaml"


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return container


def test_values_reach_the_install(helm: str, tmp_path: Path) -> None:
    values = {
        "watchNamespaces": ["team-a", "team-b"],
        "pollIntervalSeconds": 10,
        "resyncIntervalSeconds": 120,
        "irsa": {"roleArn": "arn:aws:iam::123456789012:role/ops", "stsRegionalEndpoints": False},
        "policy": {"maxInstanceCount": 3, "allowedImages": ["123456789012.dkr.ecr.us-east-1.amazonaws.com/djl:*"]},
        "resources": {"requests": {"cpu": "200m", "memory": "300Mi"}, "limits": {"memory": "600Mi"}},
        "image": {"repository": "example.org/ops/djl-operator", "tag": "9.9.9"},
        "extraArgs": ["--log-format", "json"],
        "tenantRoles": {"create": False},
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    objects = template(helm, OPERATOR_CHART, "-f", str(values_file))
    container = _container(objects)
    assert container["args"] == [
        *("--namespace", "team-a", "--namespace", "team-b"),
        *("--peering", "djl-operator", "--log-format", "json"),
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DJL_OPERATOR_POLL_SECONDS"] == "10" and env["DJL_OPERATOR_RESYNC_SECONDS"] == "120"
    assert container["resources"] == values["resources"]
    assert container["image"] == "example.org/ops/djl-operator:9.9.9"
    # Namespaced watching peers through a KopfPeering in each watched namespace, and may use it.
    peerings = [o for o in objects if o["kind"] == "KopfPeering"]
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert not [o for o in objects if o["kind"] == "ClusterKopfPeering"]
    kopf_rule = next(r for r in find(objects, "ClusterRole")["rules"] if r["apiGroups"] == ["kopf.dev"])
    assert kopf_rule["resources"] == ["kopfpeerings"]
    assert find(objects, "ServiceAccount")["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/ops"
    }
    shipped = policy.Policy.model_validate(yaml.safe_load(find(objects, "ConfigMap")["data"]["policy.yaml"]))
    assert shipped.max_instance_count == 3 and shipped != policy.Policy()
    assert not [o for o in objects if o["kind"] == "ClusterRole" and o["metadata"]["name"].startswith("djlendpoint-")]


def test_shards_and_the_events_queue(helm: str) -> None:
    """shards=3: a Deployment per shard, each with its own shard flags, pods and peering object."""
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/djl-operator-events"
    objects = template(helm, OPERATOR_CHART, "--set", "shards=3", "--set", f"eventsQueueUrl={queue}")
    deployments = sorted((o for o in objects if o["kind"] == "Deployment"), key=lambda o: o["metadata"]["name"])
    assert [d["metadata"]["name"] for d in deployments] == [f"djl-operator-shard-{i}" for i in range(3)]
    selectors = set()
    for index, deployment in enumerate(deployments):
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[args.index("--shard-index") + 1] == str(index)
        assert args[args.index("--shard-count") + 1] == "3"
        assert args[args.index("--events-queue-url") + 1] == queue
        assert args[args.index("--peering") + 1] == "djl-operator"  # the operator appends -shard-<i>
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        selectors.add(tuple(sorted(deployment["spec"]["selector"]["matchLabels"].items())))
    assert len(selectors) == 3  # no Deployment adopts another shard's pods
    peerings = sorted(o["metadata"]["name"] for o in objects if o["kind"] == "ClusterKopfPeering")
    assert peerings == [f"djl-operator-shard-{i}" for i in range(3)]
    # One shard (the default) renders as before: no shard flags, no queue.
    args = _container(template(helm, OPERATOR_CHART))["args"]
    assert "--shard-index" not in args and "--events-queue-url" not in args


def test_a_policy_change_rolls_the_pods(helm: str) -> None:
    """The operator reads its policy once: the pod template changes with it, so pods restart."""

    def checksum(*args: str) -> str:
        pod = find(template(helm, OPERATOR_CHART, *args), "Deployment")["spec"]["template"]
        value: str = pod["metadata"]["annotations"]["checksum/policy"]
        return value

    assert checksum() == checksum()
    assert checksum() != checksum("--set", "policy.maxInstanceCount=2")


def test_server_side_dry_run_of_both_charts(helm: str, kubectl: Kubectl, namespace: str) -> None:
    """What `helm install` would send, checked by the real API server (admission, schemas, PSA)."""
    install_peering_crds(kubectl)
    crds = subprocess.run(
        [helm, "template", "djl-operator-crds", str(CRD_CHART)], capture_output=True, text=True, check=True
    ).stdout
    # The CRDs exist already (the session's control plane installed them): a server-side
    # apply dry run checks the chart's version of them as the upgrade it would be.
    result = kubectl.run(
        "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-", input=crds, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "customresourcedefinition.apiextensions.k8s.io/djlendpoints.serving.djl-operator.io" in result.stdout
    # warn as well as enforce: the API server checks workload templates only for warn and audit.
    kubectl.run(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    )
    operator = subprocess.run(
        [helm, "template", "djl-operator", str(OPERATOR_CHART), "--namespace", namespace],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = kubectl.run("apply", "--dry-run=server", "-f", "-", input=operator, check=False)
    assert result.returncode == 0, result.stderr
    for applied in (
        "deployment.apps/djl-operator",
        "clusterrole.rbac.authorization.k8s.io/djl-operator",
        "clusterkopfpeering.kopf.dev/djl-operator",
        "serviceaccount/djl-operator",
        "configmap/djl-operator-policy",
    ):
        assert applied in result.stdout, result.stdout
    assert "PodSecurity" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("pollIntervalSecond=5", "additional properties 'pollIntervalSecond' not allowed"),
        ("pollIntervalSeconds=0", "/pollIntervalSeconds"),
        ("irsa.roleArn=djl-operator", "/irsa/roleArn"),
        ("watchNamespaces[0]=Team_A", "/watchNamespaces/0"),
        ("shards=0", "/shards"),
        ("eventsQueueUrl=djl-operator-events", "/eventsQueueUrl"),
    ],
)
def test_values_schema_refuses_a_mistake(helm: str, setting: str, complaint: str) -> None:
    """A misspelt or malformed value fails the install instead of being silently ignored."""
    result = subprocess.run(
        [helm, "template", "djl-operator", str(OPERATOR_CHART), "--set", setting],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0 and complaint in result.stderr, result.stderr
