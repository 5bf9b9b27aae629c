"""`djl-operator invoke` as a user runs it: a subprocess with KUBECONFIG and the
emulator's AWS_ENDPOINT_URL_* variables, against a DjlEndpoint the operator made
Ready. The endpoint serves a tiny model whose weights sit under an s3:// model id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from djl_operator import naming
from djl_operator_kit.controlplane import ControlPlane
from tests.plugins.models import HIDDEN, needs_torch
from tests.plugins.operator import BUCKET, Cluster, endpoint_manifest, wait_for

pytestmark = needs_torch

MODEL_PREFIX = "models/tiny-feature-extraction/"


def _cli(
    control_plane: ControlPlane, cluster: Cluster, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **cluster.emulator.env, "KUBECONFIG": str(control_plane.admin_kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "djl_operator.cli", "invoke", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.fixture
def embedder(cluster: Cluster, tiny_model_dir: Callable[[str], Path]) -> Callable[[str], None]:
    """apply(name): a Ready DjlEndpoint serving mean-pooled tiny embeddings from S3."""
    weights = tiny_model_dir("feature-extraction")
    for path in sorted(p for p in weights.rglob("*") if p.is_file()):
        cluster.s3.upload_file(str(path), BUCKET, MODEL_PREFIX + path.relative_to(weights).as_posix())

    def apply(name: str) -> None:
        cluster.apply(
            endpoint_manifest(
                name, model__id=f"s3://{BUCKET}/{MODEL_PREFIX}", model__properties={"option.pooling": "mean"}
            )
        )

    return apply


def test_invoke_prints_the_models_answer(
    control_plane: ControlPlane, cluster: Cluster, embedder: Callable[[str], None]
) -> None:
    embedder("emb")
    cluster.wait_ready("emb")

    as_json = _cli(control_plane, cluster, "emb", "-n", cluster.namespace, "--data", '{"inputs": "hello world"}')
    assert as_json.returncode == 0, as_json.stderr
    vector = json.loads(as_json.stdout)
    assert len(vector) == HIDDEN and all(isinstance(v, float) for v in vector)
    assert as_json.stdout.count("\n") == 1  # a vector prints on one line

    # The same text as text/plain from stdin gives the same embedding.
    as_text = _cli(control_plane, cluster, "emb", "-n", cluster.namespace, "--file", "-", stdin="hello world")
    assert as_text.returncode == 0, as_text.stderr
    assert json.loads(as_text.stdout) == vector

    calls = cluster.emulator.calls(service="sagemaker-runtime", operation="InvokeEndpoint")
    assert [(c.resource, c.error_code) for c in calls] == [(naming.endpoint_name(cluster.namespace, "emb"), None)] * 2


def test_model_errors_exit_nonzero_with_the_models_status(
    control_plane: ControlPlane, cluster: Cluster, embedder: Callable[[str], None]
) -> None:
    embedder("emb")
    cluster.wait_ready("emb")

    result = _cli(
        control_plane, cluster, "emb", "-n", cluster.namespace, "--data", "x", "--content-type", "application/x-unknown"
    )

    assert result.returncode == 1
    assert result.stdout == ""
    endpoint = naming.endpoint_name(cluster.namespace, "emb")
    assert f"ModelError from endpoint {endpoint}: the model answered 415:" in result.stderr
    assert "unsupported content type 'application/x-unknown'" in result.stderr


def test_missing_resource_is_named(control_plane: ControlPlane, cluster: Cluster) -> None:
    result = _cli(control_plane, cluster, "nope", "-n", cluster.namespace, "--data", "hello")

    assert result.returncode == 1
    assert f"DjlEndpoint {cluster.namespace}/nope not found" in result.stderr
    assert cluster.emulator.calls(service="sagemaker-runtime") == []


def test_endpoint_not_ready_says_why(
    control_plane: ControlPlane, cluster: Cluster, embedder: Callable[[str], None]
) -> None:
    cluster.emulator.faults.set(create_delay=8)
    embedder("slow")
    creating = wait_for(
        lambda: (c := cluster.condition("slow", "Ready")).get("reason") == "Creating" and c,
        timeout=30,
        what="slow Creating",
    )

    result = _cli(control_plane, cluster, "slow", "-n", cluster.namespace, "--data", "hello")
    after = cluster.condition("slow", "Ready")

    assert result.returncode == 1
    assert f"DjlEndpoint {cluster.namespace}/slow is not Ready (Ready=False, reason Creating: " in result.stderr
    # The message moves on while Creating ("creating endpoint ..." -> "endpoint is Creating on ..."):
    # the CLI quotes the one it read, which is the one before or after the call.
    assert after.get("reason") == "Creating" and after["message"]
    assert creating["message"] in result.stderr or after["message"] in result.stderr
    assert f"kubectl wait --for=condition=Ready djlendpoint/slow -n {cluster.namespace}" in result.stderr
    assert cluster.emulator.calls(service="sagemaker-runtime") == []
    cluster.wait_ready("slow", timeout=60)  # so the teardown can delete it


def test_bad_usage_fails_before_any_lookup(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(tmp_path / "no-such-kubeconfig")}
        return subprocess.run(
            [sys.executable, "-m", "djl_operator.cli", "invoke", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    both = run("x", "--data", "a", "--file", "b")
    assert both.returncode == 2
    assert "argument --file: not allowed with argument --data" in both.stderr
    neither = run("x")
    assert neither.returncode == 2
    assert "one of the arguments --data --file --messages is required" in neither.stderr
    missing = run("x", "--file", str(tmp_path / "absent.json"))
    assert missing.returncode == 1
    assert f"--file {tmp_path / 'absent.json'}: No such file or directory" in missing.stderr
