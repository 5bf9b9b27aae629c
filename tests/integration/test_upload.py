"""Uploading artifacts to the emulator's S3 (moto underneath): idempotence, SSE-KMS, errors, cleanup."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from djl_operator import api
from djl_operator.artifacts import package, upload
from djl_operator.errors import ArtifactStoreError, SpecError

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
BUCKET = "djl-artifacts"
UID = "5a0c9e4e-3d2b-4c1a-9f8e-7d6c5b4a3f2e"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def make_spec(**aws: Any) -> api.DjlEndpointSpec:
    return api.DjlEndpointSpec.model_validate(
        {
            "model": {"id": "facebook/bart-large"},
            "instance": {"type": "ml.g5.12xlarge"},
            "aws": {"executionRoleArn": ROLE, "artifactBucket": BUCKET, **aws},
        }
    )


def built(content: bytes = b"model") -> package.Package:
    data = package.build_tarball({"model.py": content, "serving.properties": b"engine=Python\n"})
    return package.Package(files={}, data=data, sha256=hashlib.sha256(data).hexdigest())


@pytest.fixture
def s3(emulator: Any) -> Any:
    client = emulator.client("s3")
    client.create_bucket(Bucket=BUCKET)
    emulator.reset_calls()
    return client


def _puts(emulator: Any) -> list[Any]:
    return [c for c in emulator.calls(service="s3", operation="PutObject") if c.ok]


def test_second_upload_sends_nothing(emulator: Any, s3: Any):
    pkg = built()
    first = upload.upload_package(s3, make_spec(), namespace="default", name="bart", owner_uid=UID, package=pkg)
    second = upload.upload_package(s3, make_spec(), namespace="default", name="bart", owner_uid=UID, package=pkg)

    assert (first.uploaded, second.uploaded) == (True, False)
    assert first.uri == second.uri == f"s3://{BUCKET}/djl-operator/default/bart/{UID}/{pkg.sha256}/model.tar.gz"
    puts = _puts(emulator)
    assert len(puts) == 1
    assert puts[0].bytes == len(pkg.data)
    body = s3.get_object(Bucket=BUCKET, Key=first.key)
    assert body["Body"].read() == pkg.data
    assert body["Metadata"] == {"sha256": pkg.sha256}


def test_an_object_with_another_checksum_is_replaced(emulator: Any, s3: Any):
    pkg = built()
    key = package.artifact_key("djl-operator", "default", "bart", UID, pkg.sha256)
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"truncated", Metadata={"sha256": "0" * 64})
    emulator.reset_calls()

    result = upload.upload_package(s3, make_spec(), namespace="default", name="bart", owner_uid=UID, package=pkg)

    assert result.uploaded
    assert len(_puts(emulator)) == 1
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == pkg.data


def test_sse_kms_when_a_key_is_set(emulator: Any, s3: Any):
    pkg = built()
    result = upload.upload_package(
        s3, make_spec(kmsKeyId=KMS_KEY), namespace="ns", name="bart", owner_uid=UID, package=pkg
    )

    head = s3.head_object(Bucket=BUCKET, Key=result.key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == KMS_KEY
    # Unchanged spec: nothing re-sent.
    again = upload.upload_package(
        s3, make_spec(kmsKeyId=KMS_KEY), namespace="ns", name="bart", owner_uid=UID, package=pkg
    )
    assert not again.uploaded
    assert len(_puts(emulator)) == 1


def test_adding_a_kms_key_later_re_encrypts_the_artifact(emulator: Any, s3: Any):
    pkg = built()
    plain = upload.upload_package(s3, make_spec(), namespace="ns", name="bart", owner_uid=UID, package=pkg)
    assert "ServerSideEncryption" not in s3.head_object(Bucket=BUCKET, Key=plain.key)

    encrypted = upload.upload_package(
        s3, make_spec(kmsKeyId=KMS_KEY), namespace="ns", name="bart", owner_uid=UID, package=pkg
    )

    assert encrypted.uploaded and encrypted.key == plain.key
    assert s3.head_object(Bucket=BUCKET, Key=plain.key)["ServerSideEncryption"] == "aws:kms"
    assert len(_puts(emulator)) == 2


def test_missing_bucket_is_a_clear_error(emulator: Any, s3: Any):
    spec = make_spec(artifactBucket="no-such-bucket")
    with pytest.raises(ArtifactStoreError) as info:
        upload.upload_package(s3, spec, namespace="ns", name="bart", owner_uid=UID, package=built())
    assert info.value.code == "NoSuchBucket"
    assert str(info.value) == "spec.aws.artifactBucket: bucket 'no-such-bucket' does not exist"
    assert isinstance(info.value, SpecError)  # the reconciler maps it to Stalled


def test_access_denied_is_a_clear_error_and_leaves_nothing(emulator: Any, s3: Any):
    emulator.faults.deny("PutObject")
    pkg = built()
    with pytest.raises(ArtifactStoreError) as info:
        upload.upload_package(s3, make_spec(), namespace="ns", name="bart", owner_uid=UID, package=pkg)
    assert info.value.code == "AccessDenied"
    assert info.value.field == "spec.aws.artifactBucket"
    assert f"may not s3:PutObject on s3://{BUCKET}/djl-operator/ns/bart/{UID}/{pkg.sha256}/model.tar.gz" in str(
        info.value
    )
    emulator.faults.clear()
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def test_bucket_in_another_region_is_refused_before_writing(emulator: Any, s3: Any):
    s3.create_bucket(Bucket="eu-artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    emulator.reset_calls()
    with pytest.raises(ArtifactStoreError) as info:
        upload.upload_package(
            s3, make_spec(artifactBucket="eu-artifacts"), namespace="ns", name="b", owner_uid=UID, package=built()
        )
    assert info.value.field == "spec.aws.region"
    assert "bucket 'eu-artifacts' is in region 'eu-west-1', not 'us-east-1'" in str(info.value)
    assert emulator.calls(service="s3", operation="PutObject") == []


def test_transient_errors_propagate_unchanged(emulator: Any, s3: Any):
    emulator.faults.internal_error("PutObject")
    with pytest.raises(ClientError) as info:
        upload.upload_package(s3, make_spec(), namespace="ns", name="bart", owner_uid=UID, package=built())
    assert not isinstance(info.value, SpecError)


def test_delete_artifacts_removes_only_that_resource(emulator: Any, s3: Any):
    for name, content in (("bart", b"1"), ("bart", b"2"), ("bart-other", b"3")):
        upload.upload_package(s3, make_spec(), namespace="ns", name=name, owner_uid=UID, package=built(content))
    prefix = upload.resource_artifacts_prefix(make_spec(), namespace="ns", name="bart", owner_uid=UID)
    assert prefix == f"djl-operator/ns/bart/{UID}/"

    assert upload.delete_artifacts(s3, BUCKET, prefix) == 2
    remaining = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert len(remaining) == 1 and remaining[0].startswith("djl-operator/ns/bart-other/")
    assert upload.delete_artifacts(s3, BUCKET, prefix) == 0  # idempotent


def test_delete_artifacts_pages_through_many_objects(emulator: Any, s3: Any):
    for i in range(7):
        s3.put_object(Bucket=BUCKET, Key=f"p/ns/many/{i:04d}", Body=b"")
    emulator.reset_calls()
    assert upload.delete_artifacts(s3, BUCKET, "p/ns/many", page_size=3) == 7
    assert len(emulator.calls(service="s3", operation="DeleteObjects")) == 3
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="p/").get("KeyCount", 0) == 0


def test_delete_artifacts_in_a_missing_bucket_is_nothing_to_do(s3: Any):
    assert upload.delete_artifacts(s3, "gone-bucket", "djl-operator/ns/bart/") == 0


@pytest.mark.parametrize("prefix", ["", "/", "//"])
def test_delete_artifacts_refuses_the_whole_bucket(s3: Any, prefix: str):
    with pytest.raises(ValueError, match="whole bucket"):
        upload.delete_artifacts(s3, BUCKET, prefix)


def _client_error(code: str, *, region: str | None = None, message: str = "") -> ClientError:
    headers = {"x-amz-bucket-region": region} if region else {}
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPHeaders": headers}}
    return ClientError(response, "PutObject")


# Wrong-region answers cannot be produced by a single-region local S3, so the
# classification is checked on the error shapes real S3 sends.
EXPLAIN_CASES = [
    pytest.param(_client_error("NoSuchBucket"), "spec.aws.artifactBucket", "does not exist", id="missing-bucket"),
    pytest.param(_client_error("AccessDenied"), "spec.aws.artifactBucket", "may not s3:PutObject", id="denied"),
    pytest.param(_client_error("PermanentRedirect", region="eu-west-1"), "spec.aws.region",
                 "bucket 'b' is in region 'eu-west-1' not 'us-east-1'", id="permanent-redirect"),
    pytest.param(_client_error("301"), "spec.aws.region", "is in another region", id="bare-301"),
    pytest.param(_client_error("AuthorizationHeaderMalformed", region="ap-south-1"), "spec.aws.region",
                 "region 'ap-south-1'", id="auth-header-malformed"),
    pytest.param(_client_error("KMS.NotFoundException", message="Invalid keyId"), "spec.aws.kmsKeyId",
                 "Invalid keyId", id="kms"),
]  # fmt: skip


@pytest.mark.parametrize(("error", "field", "words"), EXPLAIN_CASES)
def test_explain_s3_error(error: ClientError, field: str, words: str):
    explained = upload.explain_s3_error(error, bucket="b", key="k", action="s3:PutObject", region="us-east-1")
    assert explained is not None
    assert explained.field == field
    assert words in str(explained)


@pytest.mark.parametrize("code", ["SlowDown", "InternalError", "RequestTimeout", "500"])
def test_transient_codes_are_not_explained(code: str):
    assert upload.explain_s3_error(_client_error(code), bucket="b", key="k", action="s3:PutObject") is None
