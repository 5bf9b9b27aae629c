"""Name the S3 API operation a raw HTTP request is (path-style addressing, as boto3 uses
against a loopback IP endpoint), so call accounting can count PutObject/HeadObject/...."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

# Sub-resource query keys -> operation suffix, for Get/Put/Delete<suffix>.
_BUCKET_SUBRESOURCES = {
    "tagging": "BucketTagging",
    "policy": "BucketPolicy",
    "versioning": "BucketVersioning",
    "encryption": "BucketEncryption",
    "acl": "BucketAcl",
    "lifecycle": "BucketLifecycleConfiguration",
    "cors": "BucketCors",
    "notification": "BucketNotificationConfiguration",
    "ownershipControls": "BucketOwnershipControls",
    "publicAccessBlock": "PublicAccessBlock",
    "location": "BucketLocation",
    "logging": "BucketLogging",
    "website": "BucketWebsite",
}
_OBJECT_SUBRESOURCES = {
    "tagging": "ObjectTagging",
    "acl": "ObjectAcl",
    "retention": "ObjectRetention",
    "legal-hold": "ObjectLegalHold",
    "attributes": "ObjectAttributes",
}
_VERB = {"GET": "Get", "HEAD": "Get", "PUT": "Put", "DELETE": "Delete"}


def _sub(query: Mapping[str, object], table: dict[str, str], method: str) -> str | None:
    for key, suffix in table.items():
        if key in query and method in _VERB:
            return _VERB[method] + suffix
    return None


def s3_operation(
    method: str, path: str, query: Mapping[str, object], headers: Mapping[str, str]
) -> tuple[str, str | None]:
    """``(operation, resource)`` where resource is ``bucket`` or ``bucket/key`` (None for ListBuckets)."""
    method = method.upper()
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    copy_source = any(h.lower() == "x-amz-copy-source" for h in headers)
    if not bucket:
        return ("ListBuckets" if method == "GET" else f"{method} /"), None
    if not key:
        named = _sub(query, _BUCKET_SUBRESOURCES, method)
        if named:
            return named, bucket
        if method == "GET":
            if "uploads" in query:
                return "ListMultipartUploads", bucket
            if "versions" in query:
                return "ListObjectVersions", bucket
            return ("ListObjectsV2" if query.get("list-type") in ("2", ["2"]) else "ListObjects"), bucket
        by_method = {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}
        if method == "POST" and "delete" in query:
            return "DeleteObjects", bucket
        return by_method.get(method, f"{method} bucket"), bucket
    resource = f"{bucket}/{key}"
    multipart = "uploadId" in query
    if method == "PUT":
        if multipart:
            return ("UploadPartCopy" if copy_source else "UploadPart"), resource
        named = _sub(query, _OBJECT_SUBRESOURCES, method)
        if named:
            return named, resource
        return ("CopyObject" if copy_source else "PutObject"), resource
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload", resource
        if multipart:
            return "CompleteMultipartUpload", resource
        if "restore" in query:
            return "RestoreObject", resource
        return "POST object", resource
    if method == "DELETE" and multipart:
        return "AbortMultipartUpload", resource
    if method == "GET" and multipart:
        return "ListParts", resource
    named = _sub(query, _OBJECT_SUBRESOURCES, method)
    if named:
        return named, resource
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(
        method, f"{method} object"
    ), resource
