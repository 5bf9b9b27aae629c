"""Find / create / delete our artifacts in S3: the adapter the reconcile and the finalizer use.

The same shape as :mod:`djl_operator.sagemaker_adapter`: every call can be repeated after a
crash, a missing object or bucket on a delete counts as done, and only keys of our own layout
(``<prefix>/<namespace>/<name>/<uid>/...``) are ever named. The upload itself (content-addressed,
checksummed, skipped when identical) is :func:`djl_operator.artifacts.upload.upload_package`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, NoReturn

from botocore.exceptions import ClientError

from djl_operator import model_data
from djl_operator.api import DjlEndpointSpec
from djl_operator.artifacts import package, upload
from djl_operator.artifacts.package import Package
from djl_operator.planner import ArtifactFolder

# What S3 answers for a bucket that is not there (a deleted bucket must not block a delete).
_MISSING_BUCKET = frozenset({"NoSuchBucket", "404"})
# DeleteObjects takes at most 1000 keys per request.
_DELETE_BATCH = 1000


def folder_of(model_data_url: str, uid: str) -> ArtifactFolder | None:
    """The folder ``<prefix>/<ns>/<name>/<uid>/`` an S3 URL of ours lives in, else None.

    Only a URL of our layout, with this owner's uid as its folder, ever names something to delete:
    ``<uid>/<sha256>/model.tar.gz`` (ModelDataUrl), ``<uid>/<sha256>/model/`` (a snapshot's
    ModelDataSource prefix) or ``<uid>/snapshots/<commit>/`` (its weights channel). A model someone
    pointed elsewhere names nothing of ours.
    """
    if not model_data_url.startswith("s3://"):
        return None
    bucket, _, key = model_data_url[len("s3://") :].partition("/")
    parts = key.split("/")
    if key.endswith("/"):  # an S3Prefix: <uid>/<sha256>/model/ or <uid>/snapshots/<commit>/
        parts = parts[:-1]
        tail_ok = (parts[-1:] == [model_data.FILES_FOLDER] and _hex(parts[-2:-1], 64)) or (
            parts[-2:-1] == [model_data.SNAPSHOTS_FOLDER] and _hex(parts[-1:], 40)
        )
    else:
        tail_ok = parts[-1] == package.ARTIFACT_NAME
    if len(parts) < 5 or not tail_ok or parts[-3] != uid or not bucket:
        return None
    return ArtifactFolder(bucket, "/".join(parts[:-2]) + "/")


def folder_of_container(container: dict[str, Any], uid: str) -> ArtifactFolder | None:
    """The folder of ours a model's container reads: through ModelDataUrl, ModelDataSource or an
    additional channel (the operator puts all of one model's data in one resource folder)."""
    for uri in model_data.uris_read(container):
        folder = folder_of(uri, uid)
        if folder is not None:
            return folder
    return None


def _hex(parts: list[str], length: int) -> bool:
    return len(parts) == 1 and len(parts[0]) == length and all(c in "0123456789abcdef" for c in parts[0])


class ArtifactStore:
    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    def create(
        self, spec: DjlEndpointSpec, *, namespace: str, name: str, owner_uid: str, pkg: Package
    ) -> upload.UploadResult:
        """Upload the package at its content-addressed key (nothing is sent when it is already there)."""
        return upload.upload_package(self.s3, spec, namespace=namespace, name=name, owner_uid=owner_uid, package=pkg)

    def create_files(self, spec: DjlEndpointSpec, *, prefix: str, files: Mapping[str, bytes]) -> int:
        """Upload the artifact's files uncompressed under ``prefix`` (a snapshot's ModelDataSource), each
        skipped when an identical object is there; returns the bytes sent (0 on a re-apply)."""
        sent = 0
        for path, data in sorted(files.items()):
            result = upload.upload_artifact(
                self.s3,
                bucket=spec.aws.artifact_bucket,
                key=prefix + path,
                data=data,
                sha256=hashlib.sha256(data).hexdigest(),
                kms_key_id=spec.aws.kms_key_id,
                region=spec.aws.region,
                content_type="application/octet-stream",
            )
            sent += len(data) if result.uploaded else 0
        return sent

    def find(self, where: ArtifactFolder) -> tuple[str, ...]:
        """Every key under the folder (none when the bucket is gone)."""
        keys: list[str] = []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=where.bucket, Prefix=where.folder):
                keys += [obj["Key"] for obj in page.get("Contents", [])]
        except ClientError as error:
            if _code(error) in _MISSING_BUCKET:
                return ()
            _raise(error, bucket=where.bucket, key=where.folder, action="s3:ListBucket")
        return tuple(keys)

    def delete(self, bucket: str, keys: tuple[str, ...]) -> None:
        """Delete exactly these keys."""
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + _DELETE_BATCH]]
            try:
                reply = self.s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            except ClientError as error:
                if _code(error) in _MISSING_BUCKET:
                    return
                _raise(error, bucket=bucket, key=batch[0]["Key"], action="s3:DeleteObject")
            errors = reply.get("Errors") or []
            if errors:
                first = errors[0]
                denied = ClientError(
                    {"Error": {"Code": first.get("Code", ""), "Message": first.get("Message", "")}}, "DeleteObjects"
                )
                _raise(denied, bucket=bucket, key=first.get("Key", ""), action="s3:DeleteObject")

    def delete_uploads(self, where: ArtifactFolder) -> None:
        """Abort the unfinished multipart uploads under the folder (snapshot copies cut short)."""
        try:
            upload.abort_uploads(self.s3, where.bucket, where.folder)
        except ClientError as error:
            if _code(error) in _MISSING_BUCKET:
                return
            _raise(error, bucket=where.bucket, key=where.folder, action="s3:ListBucketMultipartUploads")

    def delete_folder(self, where: ArtifactFolder) -> None:
        """Delete everything under the folder (an earlier bucket or prefix a model read from)."""
        upload.delete_artifacts(self.s3, where.bucket, where.folder)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _raise(error: ClientError, *, bucket: str, key: str, action: str) -> NoReturn:
    """The user-facing error (a denial names the IAM action), else the error itself (retried)."""
    explained = upload.explain_s3_error(error, bucket=bucket, key=key, action=action)
    if explained is not None:
        raise explained from error
    raise error
