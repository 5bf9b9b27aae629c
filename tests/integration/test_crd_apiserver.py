"""The DjlEndpoint CRD against a real kube-apiserver."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.plugins.controlplane import Kubectl

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "manifests" / "examples").glob("*.yaml"))

VALID: dict[str, Any] = {
    "apiVersion": "serving.djl-operator.io/v1alpha1",
    "kind": "DjlEndpoint",
    "metadata": {"name": "valid"},
    "spec": {
        "model": {"id": "facebook/bart-large", "task": "feature-extraction", "engine": "Python"},
        "instance": {"type": "ml.g5.12xlarge", "count": 1},
        "timeouts": {"modelDataDownloadSeconds": 1800, "containerStartupHealthCheckSeconds": 3600},
        "aws": {
            "region": "us-east-1",
            "executionRoleArn": "arn:aws:iam::123456789012:role/SageMakerExecutionRole",
            "artifactBucket": "my-artifacts",
        },
    },
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """A copy of VALID with the dotted path set (value `...` deletes it)."""
    manifest = copy.deepcopy(VALID)
    *parents, leaf = path.split(".")
    node = manifest
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        del node[leaf]
    else:
        node[leaf] = value
    return manifest


def test_crd_is_established(kubectl: Kubectl) -> None:
    crd = kubectl.get_json("crd", "djlendpoints.serving.djl-operator.io")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd["spec"]["names"]["shortNames"] == ["djle"]


def test_valid_manifest_applies_with_defaults(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(VALID, "-n", namespace)
    stored = kubectl.get_json("djle", "valid", "-n", namespace)
    assert stored["spec"]["deletionPolicy"] == "Delete"
    assert stored["spec"]["aws"]["artifactPrefix"] == "djl-operator"
    assert stored["spec"]["model"]["task"] == "feature-extraction"


def test_examples_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert any("bart" in n for n in names), names
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_apply_strictly(kubectl: Kubectl, namespace: str, example: Path) -> None:
    result = kubectl.run("apply", "--validate=strict", "-n", namespace, "-f", str(example))
    assert "created" in result.stdout or "configured" in result.stdout
    for doc in yaml.safe_load_all(example.read_text()):
        stored = kubectl.get_json("djlendpoint", doc["metadata"]["name"], "-n", namespace)
        assert stored["spec"]["model"]["id"] == doc["spec"]["model"]["id"]


# (description, mutated manifest, text the API server's error must contain)
BAD_MANIFESTS = [
    ("missing model id", _with("spec.model.id", ...), "spec.model.id"),
    ("count 0", _with("spec.instance.count", 0), "spec.instance.count"),
    ("unknown instance type", _with("spec.instance.type", "ml.g5.12xlarg"), "spec.instance.type"),
    ("bad role ARN", _with("spec.aws.executionRoleArn", "arn:aws:iam::123:user/bob"), "spec.aws.executionRoleArn"),
    ("bad bucket name", _with("spec.aws.artifactBucket", "My_Bucket"), "spec.aws.artifactBucket"),
    ("unknown engine", _with("spec.model.engine", "TensorFlow"), "spec.model.engine"),
    ("unknown task", _with("spec.model.task", "image-segmentation"), "spec.model.task"),
    (
        "download timeout too high",
        _with("spec.timeouts.modelDataDownloadSeconds", 3601),
        "spec.timeouts.modelDataDownloadSeconds",
    ),
    (
        "health check timeout too low",
        _with("spec.timeouts.containerStartupHealthCheckSeconds", 59),
        "spec.timeouts.containerStartupHealthCheckSeconds",
    ),
    ("endpointName with underscore", _with("spec.endpointName", "my_endpoint"), "spec.endpointName"),
    ("endpointName of 64 chars", _with("spec.endpointName", "a" * 64), "spec.endpointName"),
    ("unknown field under spec", _with("spec.replicas", 3), "spec.replicas"),
    ("wrong type", _with("spec.instance.count", "two"), "spec.instance.count"),
    ("bad deletionPolicy", _with("spec.deletionPolicy", "Orphan"), "spec.deletionPolicy"),
    ("missing instance", _with("spec.instance", ...), "spec.instance"),
    ("volume too large", _with("spec.instance.volumeSizeGB", 513), "spec.instance.volumeSizeGB"),
    ("bad region", _with("spec.aws.region", "mars-north-1x"), "spec.aws.region"),
    ("image uri and version", _with("spec.image", {"uri": "x/y:1", "version": "0.21.0"}), "spec.image.uri"),
]


@pytest.mark.parametrize(
    ("manifest", "field"), [(m, f) for _, m, f in BAD_MANIFESTS], ids=[d for d, _, _ in BAD_MANIFESTS]
)
def test_bad_manifest_is_rejected_naming_the_field(
    kubectl: Kubectl, namespace: str, manifest: dict[str, Any], field: str
) -> None:
    result = kubectl.apply(manifest, "-n", namespace, check=False)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert field in result.stderr, result.stderr
    assert kubectl.run("get", "djle", "valid", "-n", namespace, check=False).returncode != 0


def test_status_subresource_and_printer_columns(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(VALID, "-n", namespace)
    status = {
        "observedGeneration": 1,
        "phase": "InService",
        "endpointName": "valid-endpoint",
        "endpointUrl": "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/valid-endpoint/invocations",
        "instances": {"current": 2, "desired": 3, "summary": "2/3", "selector": "serving.djl-operator.io/endpoint=v"},
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "EndpointInService",
                "message": "",
                "lastTransitionTime": "2026-11-25T00:00:00Z",
            },
        ],
        "snapshot": {"progress": "42%"},
        "undeclaredField": "pruned",
    }
    kubectl.run(
        "patch",
        "djle",
        "valid",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        yaml.safe_dump({"status": status}),
    )
    stored = kubectl.get_json("djle", "valid", "-n", namespace)
    assert stored["status"]["phase"] == "InService"
    assert "undeclaredField" not in stored["status"]

    table = kubectl.run("get", "djlendpoints", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "READY", "INSTANCES", "ENDPOINT", "INSTANCE", "MODEL", "AGE"]
    assert table[1].split()[:7] == [
        "valid",
        "InService",
        "True",
        "2/3",
        "valid-endpoint",
        "ml.g5.12xlarge",
        "facebook/bart-large",
    ]

    wide = kubectl.run("get", "djlendpoints", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-4:] == ["URL", "REASON", "SNAPSHOT", "ROLLOUT"]
    assert wide[1].split()[-3:] == [status["endpointUrl"], "EndpointInService", "42%"]  # no rollout: blank
    # An update in progress: the ROLLOUT column shows its strategy, share and stage.
    rollout = {
        "rollout": {"strategy": "Canary", "stage": "Baking", "trafficPercent": 10, "summary": "Canary 10% Baking"}
    }
    patch = yaml.safe_dump({"status": rollout})
    kubectl.run("patch", "djle", "valid", "-n", namespace, "--subresource=status", "--type=merge", "-p", patch)
    wide = kubectl.run("get", "djlendpoints", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[1].split()[-4:] == ["42%", "Canary", "10%", "Baking"]


def test_kubectl_explain_prints_descriptions(kubectl: Kubectl) -> None:
    out = kubectl.run("explain", "djlendpoint.spec.model").stdout
    assert "Hugging Face model id" in out
    assert "tensorParallelDegree" in out
    out = kubectl.run("explain", "djlendpoint.spec.instance.type").stdout
    assert "ProductionVariantInstanceType" in out
