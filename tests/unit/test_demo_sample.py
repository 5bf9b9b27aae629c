"""The demo's pure parts: its sample renders to what the emulator runtime serves,
and the helpers that read status and answers."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from djl_operator.api import DjlEndpointSpec
from djl_operator.artifacts.render import serving_properties
from djl_operator_kit.demo import (
    BUCKET,
    MODEL_PREFIX,
    DemoError,
    cosine,
    embeddings,
    env_lines,
    is_ready,
    sample_manifest,
)


def test_sample_is_a_valid_spec_with_an_s3_model_id_and_mean_pooling() -> None:
    manifest = sample_manifest()
    spec = DjlEndpointSpec.model_validate(manifest["spec"])
    props = serving_properties(spec)
    assert props["option.model_id"] == f"s3://{BUCKET}/{MODEL_PREFIX}"
    assert props["option.task"] == "feature-extraction"
    assert props["option.pooling"] == "mean"  # one sentence vector, not per-token states
    assert spec.aws.artifact_bucket == BUCKET


def _body(ready: str, observed: int, generation: int) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "status": {"observedGeneration": observed, "conditions": [{"type": "Ready", "status": ready}]},
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_body("True", 1, 1), True),
        (_body("True", 1, 2), False),  # Ready from before the last edit
        (_body("False", 2, 2), False),
        ({"metadata": {"generation": 1}}, False),
    ],
)
def test_is_ready(body: dict[str, Any], expected: bool) -> None:
    assert is_ready(body) is expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ([0.5, 1], [[0.5, 1.0]]),
        ([[0.5, 1.0], [2.0, 3.0]], [[0.5, 1.0], [2.0, 3.0]]),
        ([[[1.0], [2.0]]], [[1.0], [2.0]]),  # per-token vectors of one text
    ],
)
def test_embeddings(answer: Any, expected: list[list[float]]) -> None:
    assert embeddings(answer) == expected


@pytest.mark.parametrize("answer", [{"error": "x"}, [], ["a"], [[1.0], "b"]])
def test_non_embeddings_are_refused(answer: Any) -> None:
    with pytest.raises(DemoError, match="did not answer with embeddings"):
        embeddings(answer)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([1.0, 0.0], [2.0, 0.0], 1.0),
        ([1.0, 0.0], [0.0, 3.0], 0.0),
        ([1.0, 1.0], [-1.0, -1.0], -1.0),
        ([0.0], [1.0], 0.0),  # a zero vector has no direction
    ],
)
def test_cosine(a: list[float], b: list[float], expected: float) -> None:
    assert cosine(a, b) == pytest.approx(expected)


def test_env_lines_survive_a_real_shell(tmp_path: Path) -> None:
    env = {"KUBECONFIG": str(tmp_path / "admin config"), "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1234"}
    lines = env_lines(env, bin_dir=tmp_path / "bin")
    assert lines[0] == f'export PATH={tmp_path / "bin"}:"$PATH"'
    script = "\n".join([*lines, 'printf "%s\\n" "$KUBECONFIG" "$AWS_ENDPOINT_URL_S3" "$PATH"'])
    out = subprocess.run(
        ["bash", "-c", script], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == [env["KUBECONFIG"], env["AWS_ENDPOINT_URL_S3"], f"{tmp_path / 'bin'}:/usr/bin:/bin"]
