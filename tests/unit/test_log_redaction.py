"""No log line carries a credential, at any level, in either format.

A subprocess makes real boto3 calls (SageMaker, S3, a presigned URL, a failing
call) against the local emulator with canary credentials, at DEBUG, where
botocore prints its signing material; the canaries must not appear once.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from djl_operator import logs
from djl_operator_kit.emulator import Emulator

CANARY_KEY_ID = "ASIACANARY7KEY4ID0X1"  # shaped like a real temporary access key id
CANARY_SECRET = "canarySecret/7f3e+Q2x9LmN4pR8sT1vW6yZ0aB3cD5eF7gH9jK"
CANARY_TOKEN = "canaryToken//IQoJb3JpZ2luX2VjEJr+canary=="
# A second set handed to boto3 directly, never seen in the environment: only the
# shape-based masking can catch these (credentials that arrive at run time, e.g. IRSA).
RUNTIME_KEY_ID = "ASIARUNTIME9KEY2ID7Q"
RUNTIME_SECRET = "runtimeSecret/9a8b+7c6d5e4f3g2h1i0jKLMNOPQRSTUVWXYZ"
RUNTIME_TOKEN = "runtimeToken//FwoGZXIvYXdzEJr+runtime=="
CANARIES = [CANARY_KEY_ID, CANARY_SECRET, CANARY_TOKEN, RUNTIME_KEY_ID, RUNTIME_SECRET, RUNTIME_TOKEN]

SCRIPT = textwrap.dedent(
    f"""
    import logging, sys
    import boto3
    from botocore.config import Config
    from djl_operator import logs

    if sys.argv[1] == "raw":  # the control: plain logging, no redaction
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    else:
        logs.configure(sys.argv[1], verbose=True)
    log = logging.getLogger("djl_operator.canary")
    log.info("formatters %s", [type(h.formatter).__name__ for h in logging.getLogger().handlers])
    logging.getLogger("kopf.objects").info("kopf saw %s", {CANARY_TOKEN!r})
    config = Config(retries={{"max_attempts": 1}})
    sm = boto3.client("sagemaker", config=config)
    s3 = boto3.client("s3", config=config)
    sm.list_endpoints()
    s3.create_bucket(Bucket="canary-bucket")
    s3.put_object(Bucket="canary-bucket", Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={{"Bucket": "canary-bucket", "Key": "k"}})
    log.info("presigned %s", url)
    log.debug("presigned in extra", extra={{"url": url}})
    runtime = boto3.client(
        "s3",
        aws_access_key_id={RUNTIME_KEY_ID!r},
        aws_secret_access_key={RUNTIME_SECRET!r},
        aws_session_token={RUNTIME_TOKEN!r},
        config=config,
    )
    runtime.list_objects_v2(Bucket="canary-bucket")
    signed = runtime.generate_presigned_url("get_object", Params={{"Bucket": "b", "Key": "k"}})
    log.warning("runtime presigned %s", signed)
    try:
        sm.describe_endpoint(EndpointName="does-not-exist")
    except Exception:
        log.exception("describe failed")
    log.error("done")
    """
)


def _run(mode: str, emulator: Emulator) -> str:
    env = {
        **emulator.env,
        "AWS_ACCESS_KEY_ID": CANARY_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": CANARY_SECRET,
        "AWS_SESSION_TOKEN": CANARY_TOKEN,
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return result.stdout + result.stderr


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_canary_credential_in_debug_logs(fmt: str, emulator: Emulator) -> None:
    output = _run(fmt, emulator)
    for canary in CANARIES:
        assert output.count(canary) == 0, f"{canary} leaked in {fmt} logs"
    # The run did log what would have leaked: botocore's signing at DEBUG, our lines at every level.
    assert "botocore" in output and "Sending http request" in output
    assert output.count(logs.MASK) >= 10
    assert "describe failed" in output and "does-not-exist" in output
    # One handler, ours (kopf's configure adds its own, unredacted: it must be gone).
    assert "formatters ['RedactingFormatter']" in output and "kopf saw" in output


def test_control_raw_logging_does_leak(emulator: Emulator) -> None:
    """The same calls with plain logging print the canaries: the test above can fail."""
    output = _run("raw", emulator)
    assert CANARY_TOKEN in output and CANARY_KEY_ID in output
    assert RUNTIME_TOKEN in output


@pytest.mark.parametrize(
    "line",
    [
        "Authorization: AWS4-HMAC-SHA256 Credential=AKIAABCDEFGHIJKLMNOP/20260101/us-east-1/s3/aws4_request, "
        "Signature=ab",
        "x-amz-security-token:Fwo+secret/token==",
        "{'X-Amz-Security-Token': b'Fwo+secret/token==', 'Authorization': b'AWS4 x'}",
        "<Credentials><SessionToken>Fwo+secret/token==</SessionToken><SecretAccessKey>abc+secret/x</SecretAccessKey>",
        '{"AccessKeyId": "AKIAABCDEFGHIJKLMNOP", "SecretAccessKey": "abc+secret/x", "Token": "Fwo+secret/token=="}',
        "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIAABCDEFGHIJKLMNOP%2F2026&X-Amz-Signature=deadbeef&"
        "X-Amz-Security-Token=Fwo%2Bsecret%2Ftoken%3D%3D",
    ],
)
def test_redact_masks_credential_shapes(line: str) -> None:
    redacted = logs.redact(line)
    for secret in ("secret", "AKIAABCDEFGHIJKLMNOP", "deadbeef"):
        assert secret not in redacted, redacted
    assert logs.MASK in redacted


def test_redact_leaves_ordinary_lines_alone() -> None:
    line = "reconciled default/minilm: InService (endpoint default-minilm-1a2b3c4d)"
    assert logs.redact(line) == line
