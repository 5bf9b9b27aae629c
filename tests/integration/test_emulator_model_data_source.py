"""ModelDataSource and AdditionalModelDataSources in the emulator, through stock boto3: the shapes
CreateModel accepts and refuses, a deployment whose prefix holds nothing fails, and the runtime lays
out /opt/ml/model and each channel from S3 prefixes (isolated when EnableNetworkIsolation is set)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from djl_operator_kit.emulator import Emulator
from tests.plugins.emulator import IMAGE, ROLE, config, upload, wait_status
from tests.plugins.models import MODEL_TEMPLATE

BUCKET = "artifacts"
FILES = f"s3://{BUCKET}/m/files/"
WEIGHTS = f"s3://{BUCKET}/m/weights/"

# Answers with what it loaded from, what that folder holds and what the Hub settings were.
PROBE_HANDLER = b"""
import os

from djl_compat import Output

seen = {}


def handle(inputs):
    if inputs.is_empty():
        seen.update(inputs.get_properties())
        return None
    root = seen["model_id"]
    files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, names in os.walk(root) for f in names)
    hub = {k: os.environ.get(k) for k in ("HF_ENDPOINT", "HF_HUB_OFFLINE")}
    return Output().add_as_json({"model_id": root, "files": files, "hub": hub})
"""


def _prefix(uri: str, **extra: str) -> dict[str, Any]:
    return {"S3DataSource": {"S3Uri": uri, "S3DataType": "S3Prefix", "CompressionType": "None", **extra}}


def _container(files: str = FILES, weights: str | None = WEIGHTS, **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"Image": IMAGE, "ModelDataSource": _prefix(files), **extra}
    if weights is not None:
        container["AdditionalModelDataSources"] = [{"ChannelName": "weights", **_prefix(weights)}]
    return container


def _refusal(sm: Any, container: dict[str, Any]) -> str:
    with pytest.raises(ClientError) as info:
        sm.create_model(ModelName="m", PrimaryContainer=container, ExecutionRoleArn=ROLE)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    return str(info.value.response["Error"]["Message"])


@pytest.mark.parametrize(
    ("container", "says"),
    [
        (_container(ModelDataUrl=f"s3://{BUCKET}/m.tar.gz"), "ModelDataUrl and ModelDataSource cannot both"),
        (_container(files=f"s3://{BUCKET}/m/files"), "must end with '/' when S3DataType is S3Prefix"),
        (_container(weights=f"s3://{BUCKET}/m/weights"), "must end with '/' when S3DataType is S3Prefix"),
        (
            {"Image": IMAGE, "ModelDataSource": _prefix(FILES, CompressionType="Gzip")},
            "CompressionType must be None when S3DataType is S3Prefix",
        ),
        # What botocore's model holds: the ChannelName pattern and the list's 5 at most.
        (
            {**_container(), "AdditionalModelDataSources": [{"ChannelName": "a/b", **_prefix(WEIGHTS)}]},
            "failed to satisfy constraint: Member must satisfy regular expression pattern",
        ),
        (
            {
                **_container(),
                "AdditionalModelDataSources": [{"ChannelName": f"c{i}", **_prefix(WEIGHTS)} for i in range(6)],
            },
            "Member must have length less than or equal to 5",
        ),
    ],
)
def test_create_model_refuses_what_the_reference_does(emulator: Emulator, container: dict[str, Any], says: str) -> None:
    assert says in _refusal(emulator.client("sagemaker"), container)


def test_create_model_keeps_the_sources_and_isolation(emulator: Emulator) -> None:
    sm = emulator.client("sagemaker")
    sm.create_model(ModelName="m", PrimaryContainer=_container(), ExecutionRoleArn=ROLE, EnableNetworkIsolation=True)
    described = sm.describe_model(ModelName="m")
    assert described["PrimaryContainer"] == _container()
    assert described["EnableNetworkIsolation"] is True


def test_a_weights_channel_with_nothing_under_it_fails_the_deployment(emulator: Emulator) -> None:
    sm, s3 = emulator.client("sagemaker"), emulator.client("s3")
    upload(s3, BUCKET, "m/files/serving.properties", b"engine=Python\n")
    upload(s3, BUCKET, "m/weightsX/config.json", b"{}")  # a sibling, not under the prefix
    sm.create_model(ModelName="m", PrimaryContainer=_container(), ExecutionRoleArn=ROLE)
    config(sm, "c", "m")
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="c")
    failed = wait_status(sm, "ep", "Failed")
    assert failed["FailureReason"].startswith(f"Failed to download model data(bucket: {BUCKET}, prefix: m/weights/)")


@pytest.fixture
def serve(emulator: Emulator) -> Callable[[str, bool], dict[str, Any]]:
    """serve(name, isolated) -> the probe's answer from an endpoint reading FILES and the weights channel."""
    sm, s3 = emulator.client("sagemaker"), emulator.client("s3")
    properties = b"engine=Python\noption.model_id=/opt/ml/additional-model-data-sources/weights\n"
    upload(s3, BUCKET, "m/files/serving.properties", properties)
    upload(s3, BUCKET, "m/files/model.py", PROBE_HANDLER)
    upload(s3, BUCKET, "m/files/djl_compat.py", (MODEL_TEMPLATE / "djl_compat.py").read_bytes())
    upload(s3, BUCKET, "m/weights/config.json", b'{"hidden": 16}')
    upload(s3, BUCKET, "m/weights/1_Pooling/config.json", b"{}")
    upload(s3, BUCKET, "m/weights.json", b"{}")  # beside the prefix (a snapshot's marker): not mounted

    def make(name: str, isolated: bool) -> dict[str, Any]:
        sm.create_model(
            ModelName=name, PrimaryContainer=_container(), ExecutionRoleArn=ROLE, EnableNetworkIsolation=isolated
        )
        config(sm, name, name)
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
        wait_status(sm, name, "InService")
        runtime = emulator.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1}))
        answer: dict[str, Any] = json.loads(runtime.invoke_endpoint(EndpointName=name, Body=b"x")["Body"].read())
        return answer

    return make


def test_the_runtime_mounts_the_prefix_and_the_channel_and_isolates_the_server(
    serve: Callable[[str, bool], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/hub")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    isolated = serve("isolated", True)
    # /opt/ml/additional-model-data-sources/weights is the local copy of the channel's prefix.
    assert isolated["model_id"].endswith("/additional-model-data-sources/weights")
    assert isolated["files"] == ["1_Pooling/config.json", "config.json"]
    assert isolated["hub"] == {"HF_ENDPOINT": None, "HF_HUB_OFFLINE": "1"}

    open_server = serve("open", False)
    assert open_server["files"] == isolated["files"]
    assert open_server["hub"] == {"HF_ENDPOINT": "http://127.0.0.1:9/hub", "HF_HUB_OFFLINE": None}
