"""Deterministic ``model.tar.gz``: the same files always give the same bytes.

The sha256 of the archive is its content address (the S3 key contains it),
so nothing of the build environment may leak into the bytes: entries are
sorted, owners are root:root with empty names, mtimes are 0, modes are fixed
(0644 files, 0755 directories), the tar format is USTAR (no PAX headers with
atime/ctime), and the gzip header carries mtime 0 and no file name. The
compression level is fixed; zlib's output for a fixed level is stable across
the zlib releases Python ships with.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.abc import Traversable

from djl_operator.api import DjlEndpointSpec
from djl_operator.artifacts import render

ARTIFACT_NAME = "model.tar.gz"
_FILE_MODE = 0o644
_DIR_MODE = 0o755
_GZIP_LEVEL = 9


@dataclass(frozen=True)
class Package:
    """A built artifact: its files, the archive bytes and their sha256 (hex)."""

    files: Mapping[str, bytes]
    data: bytes
    sha256: str


def _entry(name: str, *, directory: bool, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = _DIR_MODE if directory else _FILE_MODE
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _directories(paths: list[str]) -> set[str]:
    dirs = set()
    for path in paths:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return dirs


def build_tarball(files: Mapping[str, bytes]) -> bytes:
    """A gzip'd tar of ``files`` (relative POSIX path -> content), byte-for-byte reproducible.

    Files sit at the archive root (no ``./`` prefix): SageMaker unpacks the
    archive into /opt/ml/model and DJL looks for serving.properties there.
    """
    for path in files:
        if not path or path.startswith("/") or ".." in path.split("/") or "\\" in path:
            raise ValueError(f"artifact paths must be relative POSIX paths: {path!r}")
    names = sorted(files)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        entries = sorted([(d, True) for d in _directories(names)] + [(n, False) for n in names])
        for name, is_dir in entries:
            if is_dir:
                tar.addfile(_entry(name, directory=True))
            else:
                content = files[name]
                tar.addfile(_entry(name, directory=False, size=len(content)), io.BytesIO(content))
    out = io.BytesIO()
    # filename="" and mtime=0 keep the temp name and the clock out of the gzip header.
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_package(spec: DjlEndpointSpec, template: Traversable | None = None) -> Package:
    """Render ``spec`` and archive it. Raises :class:`~djl_operator.errors.SpecError` on a bad spec."""
    files = render.render_files(spec, template)
    data = build_tarball(files)
    return Package(files=files, data=data, sha256=hashlib.sha256(data).hexdigest())


def resource_prefix(prefix: str, namespace: str, name: str, owner_uid: str) -> str:
    """``<prefix>/<namespace>/<name>/<uid>/``: every artifact of one resource lives under it.

    The uid keeps a deleted resource's clean-up away from the artifacts of a new
    resource of the same name, and no two resources ever share an object.
    """
    parts = [p for p in prefix.strip("/").split("/") if p]
    for label, value in (("namespace", namespace), ("name", name), ("uid", owner_uid)):
        if not value or "/" in value or value in (".", ".."):
            raise ValueError(f"{label} must be a non-empty name without '/': {value!r}")
    return "/".join([*parts, namespace, name, owner_uid]) + "/"


def artifact_key(prefix: str, namespace: str, name: str, owner_uid: str, sha256: str) -> str:
    """``<prefix>/<namespace>/<name>/<uid>/<sha256>/model.tar.gz``: the content-addressed S3 key."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a lower-case hex sha256: {sha256!r}")
    return f"{resource_prefix(prefix, namespace, name, owner_uid)}{sha256}/{ARTIFACT_NAME}"
