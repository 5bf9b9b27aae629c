"""Put artifacts in S3, idempotently, and remove them again.

Every function takes a boto3 S3 client (clients are thread-safe; the operator
calls these from worker threads) and never builds one.

Idempotence: the key is content-addressed, and the object carries the
archive's sha256 in its metadata. HeadObject first; an object with the same
sha256 and length (and SSE-KMS when asked for) is left alone, so a second
reconcile uploads 0 bytes.

Atomicity: artifacts are a few kilobytes (weights are fetched by DJL from
``option.model_id``), so one PutObject carries the whole archive. S3 makes a
single PutObject visible all at once or not at all, and checks the body
against ``ChecksumSHA256`` before storing it, so no half-written or corrupted
object can be left behind. Archives beyond the PutObject limit are refused
rather than uploaded in parts.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from djl_operator.api import DjlEndpointSpec
from djl_operator.artifacts.package import Package, artifact_key, resource_prefix
from djl_operator.errors import ArtifactStoreError

SHA256_METADATA_KEY = "sha256"  # sent as x-amz-meta-sha256
MAX_SINGLE_PUT_BYTES = 5 * 1024**3
BUCKET_FIELD = "spec.aws.artifactBucket"
REGION_FIELD = "spec.aws.region"
KMS_FIELD = "spec.aws.kmsKeyId"

_MISSING_BUCKET = frozenset({"NoSuchBucket"})
_DENIED = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem", "InvalidAccessKeyId"})
_WRONG_REGION = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}
)
_KMS = frozenset({"KMS.NotFoundException", "KMS.DisabledException", "KMS.KMSInvalidStateException"})


@dataclass(frozen=True)
class UploadResult:
    bucket: str
    key: str
    sha256: str
    uploaded: bool  # False when an identical object was already there

    @property
    def uri(self) -> str:
        """``s3://bucket/key``: the ModelDataUrl of CreateModel."""
        return f"s3://{self.bucket}/{self.key}"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _bucket_region(error: ClientError) -> str | None:
    headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    region = headers.get("x-amz-bucket-region") or error.response.get("Error", {}).get("Region")
    return str(region) if region else None


def explain_s3_error(
    error: ClientError, *, bucket: str, key: str | None, action: str, region: str | None = None
) -> ArtifactStoreError | None:
    """The user-facing error for an S3 failure only a spec or IAM change can fix; None if transient.

    ``action`` is the IAM action that failed (``s3:PutObject``), quoted in the message.
    """
    code = _code(error)
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    if code in _MISSING_BUCKET:
        return ArtifactStoreError(BUCKET_FIELD, f"bucket {bucket!r} does not exist", code=code, bucket=bucket, key=key)
    if code in _DENIED:
        return ArtifactStoreError(
            BUCKET_FIELD,
            f"access denied: the operator's credentials may not {action} on {where} "
            f"(check its IAM policy and the bucket policy{', and the KMS key policy' if key else ''})",
            code=code,
            bucket=bucket,
            key=key,
        )
    if code in _WRONG_REGION:
        actual = _bucket_region(error)
        where_bucket = f"region {actual!r}" if actual else "another region"
        expected = f" not {region!r}" if region else ""
        return ArtifactStoreError(
            REGION_FIELD,
            f"bucket {bucket!r} is in {where_bucket}{expected}; the artifact bucket must be in "
            f"the endpoint's region ({code})",
            code=code,
            bucket=bucket,
            key=key,
        )
    if code in _KMS or code.startswith("KMS."):
        message = error.response.get("Error", {}).get("Message", code)
        return ArtifactStoreError(KMS_FIELD, f"KMS refused the key: {message}", code=code, bucket=bucket, key=key)
    return None


def _raise_explained(error: ClientError, **context: Any) -> None:
    explained = explain_s3_error(error, **context)
    if explained is not None:
        raise explained from error
    raise error


def _kms_matches(head: dict[str, Any], kms_key_id: str | None) -> bool:
    if kms_key_id is None:
        return True
    if head.get("ServerSideEncryption") != "aws:kms":
        return False
    stored = str(head.get("SSEKMSKeyId") or "")
    # S3 reports the key ARN; the spec may hold an id, an ARN or an alias
    # (aliases cannot be resolved without KMS calls, so any KMS key matches them).
    return not stored or stored == kms_key_id or stored.endswith(f"/{kms_key_id}") or "alias/" in kms_key_id


def _already_there(s3: Any, bucket: str, key: str, sha256: str, size: int, kms_key_id: str | None) -> bool:
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        # 404: not there. 403: no s3:ListBucket, so S3 hides whether it exists;
        # the PutObject below then answers with the real problem, if any.
        if _code(error) in ("404", "NoSuchKey", "NotFound", "403", "Forbidden"):
            return False
        raise
    metadata = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    return (
        metadata.get(SHA256_METADATA_KEY) == sha256
        and head.get("ContentLength") == size
        and _kms_matches(head, kms_key_id)
    )


# (bucket, region) pairs this process has checked already: a bucket never changes region.
_REGION_CHECKED: set[tuple[str, str]] = set()


def _check_bucket_region(s3: Any, bucket: str, key: str, region: str) -> None:
    if (bucket, region) not in _REGION_CHECKED:
        _check_bucket_region_once(s3, bucket, key, region)
        _REGION_CHECKED.add((bucket, region))


def _check_bucket_region_once(s3: Any, bucket: str, key: str, region: str) -> None:
    """Refuse a bucket outside ``region`` before writing to it.

    botocore follows S3's region redirects on its own, so a PutObject to a
    bucket in another region would *succeed*, and SageMaker would fail later,
    unable to read model data across regions. HeadBucket always reports the
    bucket's region in ``x-amz-bucket-region``.
    """
    try:
        reply = s3.head_bucket(Bucket=bucket)
        headers = reply.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
        actual = reply.get("BucketRegion") or headers.get("x-amz-bucket-region")
    except ClientError as error:
        code = _code(error)
        if code in ("404", "NotFound", "NoSuchBucket"):
            raise ArtifactStoreError(
                BUCKET_FIELD, f"bucket {bucket!r} does not exist", code="NoSuchBucket", bucket=bucket, key=key
            ) from error
        if code in ("403", "Forbidden"):
            return  # no s3:ListBucket: the PutObject answer will tell
        actual = _bucket_region(error)
        if code not in _WRONG_REGION and not actual:
            raise
    if actual and actual != region:
        raise ArtifactStoreError(
            REGION_FIELD,
            f"bucket {bucket!r} is in region {actual!r}, not {region!r}; SageMaker reads model data only "
            "from a bucket in the endpoint's region",
            code="PermanentRedirect",
            bucket=bucket,
            key=key,
        )


def check_bucket_region(s3: Any, bucket: str, key: str, region: str) -> None:
    """Refuse a bucket outside ``region`` before writing to it (errors explained as for uploads)."""
    try:
        _check_bucket_region(s3, bucket, key, region)
    except ClientError as error:
        _raise_explained(error, action="s3:ListBucket", bucket=bucket, key=key, region=region)


def upload_artifact(
    s3: Any,
    *,
    bucket: str,
    key: str,
    data: bytes,
    sha256: str,
    kms_key_id: str | None = None,
    region: str | None = None,
    content_type: str = "application/gzip",
) -> UploadResult:
    """Put ``data`` at ``s3://bucket/key`` unless an identical object is already there.

    ``sha256`` (hex) is stored in the object metadata and sent as
    ``ChecksumSHA256`` so S3 rejects a corrupted body. With ``kms_key_id`` the
    object is encrypted with SSE-KMS under that key. Raises
    :class:`~djl_operator.errors.ArtifactStoreError` for a missing bucket,
    access denied, a bucket in another region (``region`` is quoted), or a
    KMS refusal; other ``ClientError``s (throttling, 5xx) propagate for retry.
    With ``region`` set, a bucket in another region is refused before any write.
    """
    if len(data) > MAX_SINGLE_PUT_BYTES:
        raise ValueError(f"artifact of {len(data)} bytes exceeds a single PutObject; keep weights out of it")
    context = {"bucket": bucket, "key": key, "region": region}
    try:
        if _already_there(s3, bucket, key, sha256, len(data), kms_key_id):
            return UploadResult(bucket=bucket, key=key, sha256=sha256, uploaded=False)
    except ClientError as error:
        _raise_explained(error, action="s3:GetObject", **context)
    try:
        if region is not None:
            _check_bucket_region(s3, bucket, key, region)
    except ClientError as error:
        _raise_explained(error, action="s3:ListBucket", **context)
    extra: dict[str, Any] = {}
    if kms_key_id is not None:
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode("ascii"),
            Metadata={SHA256_METADATA_KEY: sha256},
            **extra,
        )
    except ClientError as error:
        _raise_explained(error, action="s3:PutObject", **context)
    return UploadResult(bucket=bucket, key=key, sha256=sha256, uploaded=True)


def upload_package(
    s3: Any, spec: DjlEndpointSpec, *, namespace: str, name: str, owner_uid: str, package: Package
) -> UploadResult:
    """Upload ``package`` for the resource ``namespace/name`` (uid ``owner_uid``) at its content-addressed key."""
    return upload_artifact(
        s3,
        bucket=spec.aws.artifact_bucket,
        key=artifact_key(spec.aws.artifact_prefix, namespace, name, owner_uid, package.sha256),
        data=package.data,
        sha256=package.sha256,
        kms_key_id=spec.aws.kms_key_id,
        region=spec.aws.region,
    )


def abort_uploads(s3: Any, bucket: str, prefix: str) -> int:
    """Abort every unfinished multipart upload under ``prefix`` (snapshots: their parts bill until aborted)."""
    aborted = 0
    paginator = s3.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for found in page.get("Uploads") or []:
            try:
                s3.abort_multipart_upload(Bucket=bucket, Key=found["Key"], UploadId=found["UploadId"])
                aborted += 1
            except ClientError as error:
                if _code(error) != "NoSuchUpload":  # finished or aborted meanwhile
                    raise
    return aborted


def delete_artifacts(s3: Any, bucket: str, prefix_for_resource: str, *, page_size: int = 1000) -> int:
    """Delete every object under ``prefix_for_resource`` (``<prefix>/<namespace>/<name>/``).

    Returns how many objects were deleted. A missing bucket counts as nothing
    to delete (a resource whose bucket is gone must still be deletable).
    The prefix is treated as a folder: ``a/b`` deletes ``a/b/...``, never ``a/bc``.
    """
    folder = prefix_for_resource.rstrip("/") + "/"
    if folder == "/":
        raise ValueError("refusing to delete with an empty prefix (that is the whole bucket)")
    deleted = 0
    try:
        paginator = s3.get_paginator("list_objects_v2")
        # One DeleteObjects per listed page: both cap at 1000 keys.
        pages = paginator.paginate(Bucket=bucket, Prefix=folder, PaginationConfig={"PageSize": page_size})
        for page in pages:
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if not keys:
                continue
            reply = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            errors = reply.get("Errors") or []
            if errors:
                first = errors[0]
                raise ClientError(
                    {"Error": {"Code": first.get("Code", ""), "Message": first.get("Message", "")}},
                    "DeleteObjects",
                )
            deleted += len(keys)
        # A snapshot copy cut short leaves a multipart upload, which bills until it is aborted.
        abort_uploads(s3, bucket, folder)
    except ClientError as error:
        if _code(error) in _MISSING_BUCKET:
            return deleted
        _raise_explained(error, bucket=bucket, key=folder, action="s3:DeleteObject")
    return deleted


def resource_artifacts_prefix(spec: DjlEndpointSpec, *, namespace: str, name: str, owner_uid: str) -> str:
    """The prefix :func:`delete_artifacts` takes for the resource ``namespace/name`` (uid ``owner_uid``)."""
    return resource_prefix(spec.aws.artifact_prefix, namespace, name, owner_uid)
