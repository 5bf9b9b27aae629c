"""Fixtures for the local SageMaker + S3 emulator.

* ``emulator``: a fresh in-process :class:`Emulator` per test (zero lifecycle delays);
  starting one costs a few milliseconds once moto is imported.
* ``make_emulator(**EmulatorConfig fields)``: more emulators, all stopped at teardown.
* ``emulator_process``: ``djl-operator-kit emulator`` as a subprocess, driven through its
  admin HTTP API (:class:`~djl_operator_kit.emulator.client.EmulatorProcess`); ~1-2 s to start.
* ``conformance_client``: the aws-sdk-go-v2 conformance client (tests/conformance/go), built
  once by scripts/build-conformance.sh and cached by a hash of its sources.

Also small builders (stock boto3 only) for tests that need a model/config/endpoint:
``upload``, ``model``, ``config``, ``wait_status``; ``echo_artifact()`` is a real, tiny model
artifact (a DJL Python handler that echoes its input) for tests that invoke; ``aws_clients()`` is the
operator's client cache as it builds it, for tests that call ``reconcile``/``finalize`` in process.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.loaders import create_loader

from djl_operator.artifacts.package import build_tarball
from djl_operator.aws_clients import AwsClients
from djl_operator_kit.emulator import Emulator, EmulatorConfig
from djl_operator_kit.emulator.client import EmulatorProcess

# The service models (botocore's JSON), parsed once per test process: each new session parses them
# again, ~0.25 CPU s for the operator's five clients, and in-process tests build one per test.
_SERVICE_MODELS = create_loader()


def aws_clients() -> AwsClients:
    """The operator's clients (a session of their own, endpoints and credentials from the environment,
    the operator's retry config), sharing one parsed copy of the service models."""
    session = botocore.session.Session()
    session.register_component("data_loader", _SERVICE_MODELS)
    return AwsClients(session=boto3.session.Session(botocore_session=session))


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def make(**config: Any) -> Emulator:
        emu = Emulator(EmulatorConfig(**config)).start()
        started.append(emu)
        return emu

    yield make
    for emu in reversed(started):
        emu.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator()


@pytest.fixture
def reconcile_ctx(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A reconcile Context against the in-process emulator (its endpoints in the environment), with
    the tests' artifact bucket and the default operator policy: reconcile()/finalize() in process."""
    from djl_operator import policy
    from djl_operator.reconcile import Context
    from djl_operator.settings import Settings
    from tests.plugins.operator import BUCKET

    for key, value in emulator.env.items():
        monkeypatch.setenv(key, value)
    emulator.client("s3").create_bucket(Bucket=BUCKET)
    return Context(settings=Settings(policy=policy.Policy()), clients=aws_clients())


@pytest.fixture
def emulator_process() -> Iterator[EmulatorProcess]:
    proc = EmulatorProcess.spawn("--create-delay", "0", "--update-delay", "0", "--delete-delay", "0")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def conformance_client() -> Path:
    root = Path(__file__).resolve().parents[2]
    built = subprocess.run(
        [str(root / "scripts" / "build-conformance.sh")], capture_output=True, text=True, timeout=540, check=False
    )
    if built.returncode != 0:
        pytest.fail(f"scripts/build-conformance.sh failed ({built.returncode}):\n{built.stderr[-4000:]}")
    return Path(built.stdout.strip().splitlines()[-1])


IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"
ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"


def upload(s3: Any, bucket: str, key: str, body: bytes = b"artifact") -> str:
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{key}"


def model(sm: Any, name: str, data_url: str, image: str = IMAGE, env: dict[str, str] | None = None) -> None:
    container: dict[str, Any] = {"Image": image, "ModelDataUrl": data_url}
    if env:
        container["Environment"] = env
    sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=ROLE)


def config(sm: Any, name: str, model_name: str, count: int = 1, instance_type: str = "ml.g5.12xlarge") -> None:
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model_name,
                "InstanceType": instance_type,
                "InitialInstanceCount": count,
            }
        ],
    )


def error_alarm(cloudwatch: Any, name: str) -> None:
    """A CloudWatch alarm on an endpoint's 5xx invocations (one in a minute), for rollback guardrails."""
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def wait_status(sm: Any, name: str, wanted: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll DescribeEndpoint until ``wanted`` (the emulator's delays in these tests are tenths of a second)."""
    deadline = time.monotonic() + timeout
    while True:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] == wanted:
            return described
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} stayed {described['EndpointStatus']}, wanted {wanted}")
        time.sleep(0.05)


ECHO_HANDLER = b"""
import os
import time

from djl_compat import Output


def handle(inputs):
    if inputs.is_empty():
        # DJL's load call; ECHO_LOAD_SECONDS makes a model slow to become healthy (/ping waits for it).
        time.sleep(float(os.environ.get("ECHO_LOAD_SECONDS", "0")))
        return None
    data = bytes(inputs.get_as_bytes())
    if data == b"gate":  # answers once the file ECHO_GATE names exists: an invocation held in flight
        deadline = time.monotonic() + 60
        while not os.path.exists(os.environ["ECHO_GATE"]) and time.monotonic() < deadline:
            time.sleep(0.02)
    if data == b"fail":
        return Output().error("asked to fail", code=400)
    out = Output()
    out.add_property("content-type", "application/x-echo")
    prefix = os.environ.get("ECHO_PREFIX", "").encode()
    ctype = (inputs.get_property("Content-Type") or "").encode()
    out.add(prefix + ctype + b"|" + data)
    return out
"""


def echo_artifact(handler: bytes = ECHO_HANDLER) -> bytes:
    """model.tar.gz of a Python-engine model whose handler echoes ``ECHO_PREFIX + content type | body``."""
    root = Path(__file__).resolve().parents[2]
    files = {
        "serving.properties": b"engine=Python\n",
        "model.py": handler,
        "djl_compat.py": (root / "model_template" / "djl_compat.py").read_bytes(),
    }
    return build_tarball(files)
