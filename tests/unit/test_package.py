"""model.tar.gz is byte-for-byte reproducible and content-addressed."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

from djl_operator import api
from djl_operator.artifacts import package

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"


def make_spec(**model: Any) -> api.DjlEndpointSpec:
    return api.DjlEndpointSpec.model_validate(
        {
            "model": {"id": "facebook/bart-large", **model},
            "instance": {"type": "ml.g5.12xlarge"},
            "aws": {"executionRoleArn": ROLE, "artifactBucket": "my-sagemaker-artifacts"},
        }
    )


@pytest.fixture
def template(tmp_path: Path) -> Path:
    root = tmp_path / "template"
    (root / "helpers").mkdir(parents=True)
    (root / "model.py").write_text("def handle(inputs):\n    return None\n")
    (root / "djl_compat.py").write_text("# compat\n")
    (root / "requirements.txt").write_text("accelerate\n")
    (root / "helpers" / "util.py").write_text("X = 1\n")
    return root


def test_same_spec_twice_gives_identical_bytes(template: Path):
    first = package.build_package(make_spec(), template)
    second = package.build_package(make_spec(), template)
    assert first.data == second.data
    assert first.sha256 == second.sha256 == hashlib.sha256(first.data).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        {"properties": {"option.pooling": "mean"}},
        {"dtype": "fp16"},
        {"revision": "main"},
        {"requirements": ["einops"]},
        {"id": "facebook/bart-base"},
    ],
    ids=["property", "dtype", "revision", "requirement", "model-id"],
)
def test_a_changed_spec_changes_the_hash(template: Path, change: dict[str, Any]):
    assert (
        package.build_package(make_spec(**change), template).sha256
        != package.build_package(make_spec(), template).sha256
    )


def test_a_changed_template_changes_the_hash(template: Path):
    before = package.build_package(make_spec(), template).sha256
    (template / "model.py").write_text("def handle(inputs):\n    return 1\n")
    assert package.build_package(make_spec(), template).sha256 != before


def test_same_bytes_in_another_process_with_other_umask_and_mtimes(template: Path, tmp_path: Path):
    expected = package.build_package(make_spec(), template)
    # A copy of the template with different mtimes and permissions, built by a
    # fresh interpreter running under umask 077 from another working directory.
    other = tmp_path / "other-template"
    shutil.copytree(template, other)
    for i, path in enumerate(sorted(other.rglob("*"))):
        os.utime(path, (1_000_000 + i, 2_000_000_000 - i))
        if path.is_file():
            path.chmod(0o600)
    script = textwrap.dedent(
        f"""
        import os, sys
        os.umask(0o077)
        from pathlib import Path
        from djl_operator import api
        from djl_operator.artifacts import package
        spec = api.DjlEndpointSpec.model_validate_json({make_spec().model_dump_json(by_alias=True)!r})
        sys.stdout.write(package.build_package(spec, Path({str(other)!r})).data.hex())
        """
    )
    env = {**os.environ, "TZ": "Pacific/Kiritimati", "SOURCE_DATE_EPOCH": "123"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert bytes.fromhex(out.stdout) == expected.data


def test_archive_layout_is_normalised(template: Path):
    built = package.build_package(make_spec(), template)
    # gzip header: magic, deflate, FLG=0 (no FNAME), MTIME=0.
    assert built.data[:4] == b"\x1f\x8b\x08\x00"
    assert built.data[4:8] == b"\x00\x00\x00\x00"
    with tarfile.open(fileobj=io.BytesIO(built.data), mode="r:gz") as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        assert names == [
            "djl_compat.py", "helpers", "helpers/util.py", "model.py", "requirements.txt", "serving.properties",
        ]  # fmt: skip
        for member in members:
            assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")
            assert member.mode == (0o755 if member.isdir() else 0o644)
            assert not member.name.startswith(("./", "/"))
        assert tar.extractfile("serving.properties").read() == built.files["serving.properties"]  # type: ignore[union-attr]
    assert gzip.decompress(built.data)[257:262] == b"ustar"


def test_tarball_is_independent_of_insertion_order():
    a = package.build_tarball({"b.txt": b"2", "a.txt": b"1"})
    b = package.build_tarball({"a.txt": b"1", "b.txt": b"2"})
    assert a == b


@pytest.mark.parametrize("bad", ["/abs.py", "../escape.py", "a/../../b", "", "win\\path"])
def test_tarball_refuses_paths_outside_the_root(bad: str):
    with pytest.raises(ValueError, match="relative POSIX"):
        package.build_tarball({bad: b"x"})


SHA = "ab" * 32

UID = "0b7c1d6e-5f4a-4e3b-9c2d-1a0f9e8d7c6b"
KEY_CASES = [
    ("djl-operator", "default", "bart", f"djl-operator/default/bart/{UID}/{SHA}/model.tar.gz"),
    ("", "ns", "bart", f"ns/bart/{UID}/{SHA}/model.tar.gz"),
    ("/team/a//models/", "ns", "bart", f"team/a/models/ns/bart/{UID}/{SHA}/model.tar.gz"),
]


@pytest.mark.parametrize(("prefix", "namespace", "name", "key"), KEY_CASES)
def test_artifact_key(prefix: str, namespace: str, name: str, key: str):
    assert package.artifact_key(prefix, namespace, name, UID, SHA) == key
    assert key.startswith(package.resource_prefix(prefix, namespace, name, UID))


def test_a_recreated_resource_never_shares_a_folder_with_the_old_one():
    """Same namespace and name, another uid: the old one's clean-up cannot reach the new one's artifacts."""
    old = package.resource_prefix("djl-operator", "ns", "bart", UID)
    new = package.resource_prefix("djl-operator", "ns", "bart", UID.replace("0b7c", "ffff"))
    assert not new.startswith(old) and not old.startswith(new)


@pytest.mark.parametrize(
    ("namespace", "name", "uid", "sha"),
    [("", "n", UID, SHA), ("ns", "a/b", UID, SHA), ("ns", "n", UID, "ABC"), ("ns", "n", UID, SHA.upper()),
     ("ns", "n", "", SHA), ("ns", "n", "..", SHA), ("ns", "n", "a/b", SHA)],
)  # fmt: skip
def test_artifact_key_refuses_bad_parts(namespace: str, name: str, uid: str, sha: str):
    with pytest.raises(ValueError):
        package.artifact_key("p", namespace, name, uid, sha)
