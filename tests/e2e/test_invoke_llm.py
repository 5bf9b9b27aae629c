"""The LLM path end to end: a text-generation DjlEndpoint on the default image (djl-lmi,
LMI's built-in handler, no model.py) reaches Ready; `djl-operator invoke --messages --stream`
streams tokens from a tiny causal LM through boto3's InvokeEndpointWithResponseStream, and
the non-streaming chat answer is an OpenAI-style chat.completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from djl_operator import naming
from djl_operator.artifacts import images
from djl_operator_kit.controlplane import ControlPlane
from tests.plugins.models import needs_torch
from tests.plugins.operator import BUCKET, Cluster, endpoint_manifest

pytestmark = needs_torch

MODEL_PREFIX = "models/tiny-text-generation/"


def _cli(control_plane: ControlPlane, cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **cluster.emulator.env, "KUBECONFIG": str(control_plane.admin_kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "djl_operator.cli", "invoke", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_llm_on_the_default_image_streams_and_chats(
    control_plane: ControlPlane, cluster: Cluster, tiny_model_dir: Callable[[str], Path]
) -> None:
    weights = tiny_model_dir("text-generation")
    for path in sorted(p for p in weights.rglob("*") if p.is_file()):
        cluster.s3.upload_file(str(path), BUCKET, MODEL_PREFIX + path.relative_to(weights).as_posix())
    manifest = endpoint_manifest(
        "llm",
        model__id=f"s3://{BUCKET}/{MODEL_PREFIX}",
        model__task="text-generation",
        model__maxRollingBatchSize=8,
        instance__type="ml.g5.xlarge",
    )
    del manifest["spec"]["image"]  # the default: the newest djl-lmi
    cluster.apply(manifest)
    cluster.wait_ready("llm", timeout=120)

    endpoint = naming.endpoint_name(cluster.namespace, "llm")
    sm = cluster.emulator.client("sagemaker")
    config = sm.describe_endpoint_config(
        EndpointConfigName=sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    )
    image = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])["PrimaryContainer"]["Image"]
    assert image == images.table_images("djl-lmi", "us-east-1")[0]

    ns = ("-n", cluster.namespace)
    chat = _cli(control_plane, cluster, "llm", *ns, "--messages", "hello world", "--max-tokens", "8")
    assert chat.returncode == 0, chat.stderr
    completion = json.loads(chat.stdout)
    assert completion["object"] == "chat.completion"
    (choice,) = completion["choices"]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    assert completion["usage"]["completion_tokens"] <= 8

    streamed = _cli(control_plane, cluster, "llm", *ns, "--messages", "hello world", "--max-tokens", "8", "--stream")
    assert streamed.returncode == 0, streamed.stderr
    # Greedy decoding: the streamed tokens spell the same answer as the whole one.
    assert streamed.stdout == choice["message"]["content"] + "\n"

    calls = cluster.emulator.calls(service="sagemaker-runtime")
    assert [(c.operation, c.resource, c.error_code) for c in calls] == [
        ("InvokeEndpoint", endpoint, None),
        ("InvokeEndpointWithResponseStream", endpoint, None),
    ]
    assert calls[1].bytes_out > 0
