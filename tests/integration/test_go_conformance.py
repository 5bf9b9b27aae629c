"""A second AWS SDK agrees with the emulator: aws-sdk-go-v2 runs the operator's whole scenario.

tests/conformance/go drives SageMaker (create, describe, list with pagination, update with
RetainAllVariantProperties, tags, delete, the SDK's own waiters), sagemaker-runtime
InvokeEndpoint (blue/green during an update) and InvokeEndpointWithResponseStream (through the
SDK's event-stream decoder), S3, STS GetCallerIdentity, the Tagging API's GetResources and
Application Auto Scaling (targets, a target-tracking policy that scales a variant under a
simulated load, scheduled actions, activities, DeleteEndpoint deregistering), and every fault
the emulator can inject. It fails on any response the Go SDK cannot deserialize, any
always-returned member that is missing, and any error whose code, message, HTTP status or
request id AWS would not send. This test also checks, from the emulator's call log, that the
client really made every call and met every error: a client that skipped its scenario could
not pass.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from djl_operator_kit.emulator import Emulator
from djl_operator_kit.emulator import sts as sts_api
from tests.plugins.emulator import echo_artifact

KEY = "conformance-go"

# Every error the scenario provokes, by service, as the emulator recorded it.
EXPECTED_ERRORS = {
    "sagemaker": {
        "ValidationException",
        "ThrottlingException",
        "AccessDeniedException",
        "InternalFailure",
        "ResourceLimitExceeded",
    },
    "sagemaker-runtime": {
        "ValidationError",
        "ModelError",
        "ThrottlingException",
        "AccessDeniedException",
        "InternalFailure",
    },
    "resourcegroupstaggingapi": {
        "InvalidParameterException",
        "ThrottledException",
        "AccessDeniedException",
        "InternalServiceException",
    },
    "sts": {"Throttling", "InternalFailure"},
    "application-autoscaling": {
        "ValidationException",
        "ObjectNotFoundException",
        "ThrottlingException",
        "AccessDeniedException",
        "InternalServiceException",
    },
    "s3": {"NoSuchKey", "404", "AccessDenied", "InternalError", "SlowDown"},
}


def test_aws_sdk_go_v2_conformance(emulator: Emulator, conformance_client: Path, tmp_path: Path) -> None:
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(echo_artifact())
    env = {
        **os.environ,
        **emulator.env,
        "CONFORMANCE_ARTIFACT": str(artifact),
        "CONFORMANCE_ACCESS_KEY": KEY,
    }
    run = subprocess.run([str(conformance_client)], env=env, capture_output=True, text=True, timeout=300, check=False)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-8000:]
    assert "checks passed, 0 failed" in report

    calls = [c for c in emulator.calls() if c.principal == KEY]
    made = {(c.service, c.operation) for c in calls if c.ok}
    served = {("sagemaker", op) for op in emulator.sagemaker.operations}
    served |= {("resourcegroupstaggingapi", op) for op in emulator.tagging.operations}
    served |= {("sts", op) for op in sts_api.OPERATIONS}
    served |= {("application-autoscaling", op) for op in emulator.autoscaling.operations}
    served |= {("sagemaker-runtime", "InvokeEndpoint"), ("sagemaker-runtime", "InvokeEndpointWithResponseStream")}
    assert served <= made, f"the Go client never succeeded at: {sorted(served - made)}"
    for service, codes in EXPECTED_ERRORS.items():
        seen = {c.error_code for c in calls if c.service == service and c.error_code}
        assert codes <= seen, f"{service}: never provoked {sorted(codes - seen)}"
