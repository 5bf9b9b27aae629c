"""InvokeEndpoint with an ``s3://`` option.model_id: the runtime downloads the prefix
from the emulator's S3 and serves the local copy, as DJL Serving does in AWS."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from djl_operator.artifacts.package import build_tarball
from djl_operator_kit.emulator import Emulator
from tests.plugins.emulator import config, model, upload
from tests.plugins.models import HIDDEN, MODEL_TEMPLATE, TEMPLATE_FILES, render_properties

BUCKET = "weights"

# Answers with what the handler was given at load and what the model folder holds.
PROBE_HANDLER = b"""
import json
import os

from djl_compat import Output

seen = {}


def handle(inputs):
    if inputs.is_empty():
        seen.update(inputs.get_properties())
        return None
    root = seen["model_id"]
    files = sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names
    )
    with open(os.path.join(root, "config.json")) as f:
        config = f.read()
    return Output().add_as_json({"model_id": root, "files": files, "config": config})
"""


def _template_files() -> dict[str, bytes]:
    return {name: (MODEL_TEMPLATE / name).read_bytes() for name in TEMPLATE_FILES}


@pytest.fixture
def deploy(emulator: Emulator) -> Callable[[str, bytes], Any]:
    """deploy(name, artifact tarball) -> a sagemaker-runtime client for the InService endpoint."""
    sm, s3 = emulator.client("sagemaker"), emulator.client("s3")

    def make(name: str, artifact: bytes) -> Any:
        url = upload(s3, "artifacts", f"{name}/model.tar.gz", artifact)
        model(sm, name, url)
        config(sm, name, name)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        return emulator.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1}))

    return make


def test_s3_prefix_is_downloaded_and_served_locally(emulator: Emulator, deploy: Callable[[str, bytes], Any]) -> None:
    s3 = emulator.client("s3")
    upload(s3, BUCKET, "models/probe/config.json", b'{"hidden": 16}')
    upload(s3, BUCKET, "models/probe/1_Pooling/config.json", b"{}")
    upload(s3, BUCKET, "models/probe/empty-folder/", b"")  # a console-made folder marker
    upload(s3, BUCKET, "models/probe-other/config.json", b"not mine")  # a sibling prefix
    artifact = build_tarball(
        {
            "serving.properties": b"engine=Python\noption.model_id=s3://weights/models/probe\n",
            "model.py": PROBE_HANDLER,
            "djl_compat.py": (MODEL_TEMPLATE / "djl_compat.py").read_bytes(),
        }
    )
    runtime = deploy("probe", artifact)

    answer = json.loads(runtime.invoke_endpoint(EndpointName="probe", Body=b"x")["Body"].read())

    assert answer["files"] == ["1_Pooling/config.json", "config.json"]
    assert answer["config"] == '{"hidden": 16}'
    assert Path(answer["model_id"]).is_absolute()
    assert not answer["model_id"].startswith("s3://")
    # The runtime's own reads are not client calls.
    assert [c.operation for c in emulator.calls(service="s3")].count("GetObject") == 0


def test_model_template_serves_weights_from_s3(
    emulator: Emulator, deploy: Callable[[str, bytes], Any], tiny_model_dir: Callable[[str], Path]
) -> None:
    s3 = emulator.client("s3")
    weights = tiny_model_dir("feature-extraction")
    for path in sorted(p for p in weights.rglob("*") if p.is_file()):
        upload(s3, BUCKET, f"models/tiny/{path.relative_to(weights).as_posix()}", path.read_bytes())
    properties = render_properties("s3://weights/models/tiny/", "feature-extraction", pooling="mean")
    runtime = deploy("tiny", build_tarball({"serving.properties": properties.encode(), **_template_files()}))

    answer = runtime.invoke_endpoint(
        EndpointName="tiny", Body=b'{"inputs": "hello world"}', ContentType="application/json"
    )

    vector = json.loads(answer["Body"].read())
    assert len(vector) == HIDDEN
    assert all(isinstance(v, float) for v in vector)


def test_empty_prefix_is_a_model_error(emulator: Emulator, deploy: Callable[[str, bytes], Any]) -> None:
    emulator.client("s3").create_bucket(Bucket=BUCKET)
    properties = render_properties("s3://weights/models/missing/", "feature-extraction")
    runtime = deploy("missing", build_tarball({"serving.properties": properties.encode(), **_template_files()}))

    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="missing", Body=b"hello", ContentType="text/plain")

    response = info.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["OriginalStatusCode"] == 500
    assert "option.model_id s3://weights/models/missing/ holds no objects" in response["OriginalMessage"]
    assert emulator.runtime.running() == 0


def test_missing_bucket_is_a_model_error(emulator: Emulator, deploy: Callable[[str, bytes], Any]) -> None:
    properties = render_properties("s3://no-such-bucket/m/", "feature-extraction")
    runtime = deploy("nobucket", build_tarball({"serving.properties": properties.encode(), **_template_files()}))

    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="nobucket", Body=b"hello", ContentType="text/plain")

    message = info.value.response["OriginalMessage"]
    assert "could not download option.model_id s3://no-such-bucket/m/" in message
    assert "NoSuchBucket" in message
