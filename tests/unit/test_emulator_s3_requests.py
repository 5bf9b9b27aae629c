"""Which S3 operation a raw path-style request is, for call accounting."""

from __future__ import annotations

import pytest

from djl_operator_kit.emulator.s3_requests import s3_operation


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "expected"),
    [
        ("GET", "/", {}, {}, ("ListBuckets", None)),
        ("PUT", "/b", {}, {}, ("CreateBucket", "b")),
        ("HEAD", "/b", {}, {}, ("HeadBucket", "b")),
        ("DELETE", "/b", {}, {}, ("DeleteBucket", "b")),
        ("GET", "/b", {"list-type": ["2"]}, {}, ("ListObjectsV2", "b")),
        ("GET", "/b", {}, {}, ("ListObjects", "b")),
        ("PUT", "/b", {"encryption": [""]}, {}, ("PutBucketEncryption", "b")),
        ("POST", "/b", {"delete": [""]}, {}, ("DeleteObjects", "b")),
        ("PUT", "/b/k/model.tar.gz", {}, {}, ("PutObject", "b/k/model.tar.gz")),
        ("PUT", "/b/k%20x", {}, {}, ("PutObject", "b/k x")),
        ("PUT", "/b/k", {}, {"x-amz-copy-source": "/b/j"}, ("CopyObject", "b/k")),
        ("GET", "/b/k", {}, {}, ("GetObject", "b/k")),
        ("HEAD", "/b/k", {}, {}, ("HeadObject", "b/k")),
        ("DELETE", "/b/k", {}, {}, ("DeleteObject", "b/k")),
        ("POST", "/b/k", {"uploads": [""]}, {}, ("CreateMultipartUpload", "b/k")),
        ("PUT", "/b/k", {"uploadId": ["u"], "partNumber": ["1"]}, {}, ("UploadPart", "b/k")),
        ("POST", "/b/k", {"uploadId": ["u"]}, {}, ("CompleteMultipartUpload", "b/k")),
        ("DELETE", "/b/k", {"uploadId": ["u"]}, {}, ("AbortMultipartUpload", "b/k")),
        ("GET", "/b/k", {"uploadId": ["u"]}, {}, ("ListParts", "b/k")),
        ("PUT", "/b/k", {"tagging": [""]}, {}, ("PutObjectTagging", "b/k")),
    ],
)
def test_s3_operation(
    method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], expected: tuple[str, str | None]
) -> None:
    assert s3_operation(method, path, query, headers) == expected
