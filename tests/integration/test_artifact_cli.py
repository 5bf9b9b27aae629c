"""``djl-operator render`` and ``djl-operator package`` end to end (offline; S3 is the emulator)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from djl_operator import cli, naming
from djl_operator.artifacts import images
from djl_operator.artifacts.cli import OFFLINE_UID
from tests.unit.test_requests import assert_valid

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "manifests" / "examples"
BART = EXAMPLES / "bart-large-feature-extraction.yaml"
SEED_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.21.0-deepspeed0.8.3-cu117"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_manifest(tmp_path: Path, mutate: Any) -> Path:
    body = yaml.safe_load(BART.read_text())
    mutate(body)
    path = tmp_path / "endpoint.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_render_writes_artifact_files_and_requests(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "render", "-f", str(BART), "-o", str(out_dir))
    assert code == 0, err

    written = sorted(p.name for p in out_dir.iterdir())
    assert {"model.py", "requirements.txt", "serving.properties", "model.tar.gz", "requests.json"} <= set(written)
    archive = (out_dir / "model.tar.gz").read_bytes()
    sha = hashlib.sha256(archive).hexdigest()
    assert f"sha256: {sha}" in out
    with tarfile.open(out_dir / "model.tar.gz") as tar:
        names = tar.getnames()
        # Every rendered file on disk is the one in the archive.
        for name in names:
            assert tar.extractfile(name).read() == (out_dir / name).read_bytes()  # type: ignore[union-attr]
    assert set(written) == {*names, "model.tar.gz", "requests.json"}

    props = (out_dir / "serving.properties").read_text()
    assert "option.model_id=facebook/bart-large\n" in props
    assert "option.model_loading_timeout=3600\n" in props

    planned = json.loads((out_dir / "requests.json").read_text())
    assert list(planned) == ["CreateModel", "CreateEndpointConfig", "CreateEndpoint"]
    for operation, request in planned.items():
        assert_valid(operation, request)
    model = planned["CreateModel"]
    # The names are the operator's own: <short cr name>-<owner id>-<hash>, tagged with the owner.
    assert re.fullmatch(r"bart-large-[0-9a-f]{8}-[0-9a-f]{10}", model["ModelName"])
    tags = {t["Key"]: t["Value"] for t in model.pop("Tags")}
    assert tags["djl-operator.io/name"] == "bart-large" and tags["djl-operator.io/namespace"] == "default"
    assert model["PrimaryContainer"] == {
        "Image": SEED_IMAGE,
        "ModelDataUrl": f"s3://my-sagemaker-artifacts/djl-operator/default/bart-large/{OFFLINE_UID}/{sha}/model.tar.gz",
    }
    variant = planned["CreateEndpointConfig"]["ProductionVariants"][0]
    assert variant == {
        "VariantName": "AllTraffic",
        "ModelName": model["ModelName"],
        "InstanceType": "ml.g5.12xlarge",
        "InitialInstanceCount": 1,
        "ModelDataDownloadTimeoutInSeconds": 1800,
        "ContainerStartupHealthCheckTimeoutInSeconds": 3600,
    }
    endpoint = planned["CreateEndpoint"]
    assert endpoint.pop("Tags") == planned["CreateEndpointConfig"]["Tags"]
    assert endpoint == {
        "EndpointName": naming.endpoint_name("default", "bart-large"),
        "EndpointConfigName": planned["CreateEndpointConfig"]["EndpointConfigName"],
    }


@pytest.mark.parametrize("manifest", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_manifest_renders(manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code, _, err = run(capsys, "render", "-f", str(manifest), "-o", str(tmp_path))
    assert code == 0, err
    spec = yaml.safe_load(manifest.read_text())["spec"]
    planned = json.loads((tmp_path / "requests.json").read_text())
    image = spec.get("image", {})  # none: the newest djl-lmi
    expected_image = images.image_uri(image.get("framework", "djl-lmi"), spec["aws"]["region"], image.get("version"))
    assert planned["CreateModel"]["PrimaryContainer"]["Image"] == expected_image
    assert f"engine={spec['model']['engine']}\n" in (tmp_path / "serving.properties").read_text()


def test_examples_cover_the_seed_and_an_lmi_model():
    stems = {p.stem for p in EXAMPLES.glob("*.yaml")}
    assert stems == {"bart-large-feature-extraction", "lmi-text-generation", "llm-chat-vllm"}


BAD_CASES = [
    pytest.param(lambda b: b["spec"]["instance"].update(count=0), "spec.instance.count: ", id="count-zero"),
    pytest.param(lambda b: b["spec"]["model"].update(engine="DeepSpeed"), "spec.model.engine: ", id="matrix"),
    pytest.param(lambda b: b["spec"]["model"].update(colour="red"), "spec.model.colour: ", id="unknown-field"),
    pytest.param(lambda b: b["spec"]["model"].update(properties={"option.task": "fill-mask"}),
                 "spec.model.properties[option.task]: ", id="contradiction"),
    pytest.param(lambda b: b.update(kind="Deployment"), "kind: must be DjlEndpoint", id="kind"),
    pytest.param(lambda b: b["metadata"].update(name="Bad_Name"), "metadata.name: ", id="name"),
]  # fmt: skip


# Only render resolves the image (package needs no image).
RENDER_ONLY_CASES = [
    pytest.param(lambda b: b["spec"]["image"].update(version="0.99.0"), "spec.image.version: ", id="image"),
    pytest.param(lambda b: b["spec"]["aws"].update(region="xx-nowhere-1"), "spec.aws.region: ", id="region"),
    # The operator policy of DJL_OPERATOR_POLICY_FILE (tests/operator-policy.yaml: the defaults plus example.com).
    pytest.param(lambda b: b["spec"]["model"].update(properties={"option.trust_remote_code": "true"}),
                 "spec.model.properties[option.trust_remote_code]: denied by the operator policy", id="policy"),
]  # fmt: skip
BAD_INVOCATIONS = [
    *[pytest.param(cmd, *case.values, id=f"{cmd}-{case.id}") for case in BAD_CASES for cmd in ("render", "package")],
    *[pytest.param("render", *case.values, id=f"render-{case.id}") for case in RENDER_ONLY_CASES],
]


@pytest.mark.parametrize(("command", "mutate", "message"), BAD_INVOCATIONS)
def test_bad_manifest_exits_2_naming_the_field(
    command: str, mutate: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = write_manifest(tmp_path, mutate)
    extra = ["-o", str(tmp_path / "out")] if command == "render" else []
    code, out, err = run(capsys, command, "-f", str(path), *extra)
    assert code == 2
    assert message in err
    assert out == ""
    assert not (tmp_path / "out").exists()


def test_package_prints_sha_and_key_matching_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code, out, _ = run(capsys, "package", "-f", str(BART), "-n", "team-a", "-o", str(tmp_path / "m.tgz"))
    assert code == 0
    sha = hashlib.sha256((tmp_path / "m.tgz").read_bytes()).hexdigest()
    assert out.splitlines() == [
        f"sha256: {sha}",
        f"key:    djl-operator/team-a/bart-large/{OFFLINE_UID}/{sha}/model.tar.gz",
    ]
    code, rendered, _ = run(capsys, "render", "-f", str(BART), "-o", str(tmp_path / "r"))
    assert f"sha256: {sha}" in rendered


def test_package_upload_uses_stock_boto3_env_and_is_idempotent(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    for key, value in emulator.env.items():
        monkeypatch.setenv(key, value)
    emulator.client("s3").create_bucket(Bucket="my-sagemaker-artifacts")

    code, first, err = run(capsys, "package", "-f", str(BART), "--upload")
    assert code == 0, err
    code, second, err = run(capsys, "package", "-f", str(BART), "--upload")
    assert code == 0, err

    assert "(uploaded)" in first
    assert "already present, not uploaded again" in second
    puts = emulator.calls(service="s3", operation="PutObject")
    assert len(puts) == 1


def test_package_upload_to_a_missing_bucket_exits_2(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    for key, value in emulator.env.items():
        monkeypatch.setenv(key, value)
    code, _, err = run(capsys, "package", "-f", str(BART), "--upload")
    assert code == 2
    assert "spec.aws.artifactBucket: bucket 'my-sagemaker-artifacts' does not exist" in err


def test_the_installed_command_renders(tmp_path: Path):
    exe = Path(sys.executable).parent / "djl-operator"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    proc = subprocess.run(
        [str(exe), "render", "-f", str(BART), "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "requests.json").is_file()
