"""Where a served snapshot's Model reads its files (CreateModel's PrimaryContainer), and back.

A snapshot (spec.model.snapshot) is served without any download by the container itself:

* ``ModelDataSource.S3DataSource`` names the artifact's files, uncompressed, under
  ``<resource folder><sha256>/model/`` (S3Prefix, CompressionType None): SageMaker copies every
  object under the prefix to /opt/ml/model, "trim[ming] its key by the prefix, and use the
  remainder as the path (relative to /opt/ml/model)" (API reference, S3ModelDataSource).
* ``AdditionalModelDataSources`` holds one channel, ``weights``, naming the commit's files
  (``<resource folder>snapshots/<commit>/``), which SageMaker makes available under
  ``/opt/ml/additional-model-data-sources/<ChannelName>/`` ("Data sources that are available to
  your model in addition to the one that you specify for ModelDataSource", API reference,
  AdditionalModelDataSource; the mount path as the SageMaker Terraform/Pulumi docs give it).
* serving.properties says ``option.model_id=/opt/ml/additional-model-data-sources/weights``:
  DJL Serving's ``model_id`` "can point to huggingface model_id or local directory"
  (djl_python/properties_manager/properties.py).

So the per-spec files (a few KB, content-addressed by the artifact's sha256) and the per-commit
weights (GBs, copied once per commit) stay apart: a spec change uploads the small files only, and
both are instance storage by the time the container starts, which is what lets
``EnableNetworkIsolation`` be set. Both folders sit in the resource's own folder (its uid in the
name), so no object is shared between resources and the finalizer finds them from the uid alone.
"""

from __future__ import annotations

import re
from typing import Any

WEIGHTS_CHANNEL = "weights"
CHANNELS_PATH = "/opt/ml/additional-model-data-sources"
WEIGHTS_PATH = f"{CHANNELS_PATH}/{WEIGHTS_CHANNEL}"
FILES_FOLDER = "model"  # <resource folder><sha256>/model/: the artifact's files, uncompressed
SNAPSHOTS_FOLDER = "snapshots"  # snapshot.FOLDER
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def files_prefix(resource_folder: str, sha256: str) -> str:
    """``<resource folder><sha256>/model/``: the key prefix of the artifact's uncompressed files."""
    if not _SHA256.match(sha256):
        raise ValueError(f"not a lower-case hex sha256: {sha256!r}")
    return f"{resource_folder}{sha256}/{FILES_FOLDER}/"


def served_commit(model_id: str, bucket: str, resource_folder: str) -> str | None:
    """The commit when ``model_id`` is this resource's own snapshot prefix (what the snapshot gate
    serves), else None: any other s3:// model id is read by the container itself, as before."""
    prefix = f"s3://{bucket}/{resource_folder}{SNAPSHOTS_FOLDER}/"
    if not model_id.startswith(prefix):
        return None
    commit = model_id[len(prefix) :].rstrip("/")
    return commit if _COMMIT.match(commit) else None


def s3_prefix(uri: str) -> dict[str, str]:
    """An uncompressed S3Prefix source; its URI ends with '/' as the API reference requires."""
    return {"S3Uri": uri if uri.endswith("/") else uri + "/", "S3DataType": "S3Prefix", "CompressionType": "None"}


def snapshot_container(image_uri: str, files_uri: str, weights_uri: str) -> dict[str, Any]:
    """The PrimaryContainer of a served snapshot."""
    return {
        "Image": image_uri,
        "ModelDataSource": {"S3DataSource": s3_prefix(files_uri)},
        "AdditionalModelDataSources": [{"ChannelName": WEIGHTS_CHANNEL, "S3DataSource": s3_prefix(weights_uri)}],
    }


def uris_read(container: dict[str, Any]) -> list[str]:
    """Every S3 URI a container reads: ModelDataUrl, ModelDataSource's and each additional channel's."""
    uris = [container.get("ModelDataUrl") or ""]
    uris.append(((container.get("ModelDataSource") or {}).get("S3DataSource") or {}).get("S3Uri") or "")
    for channel in container.get("AdditionalModelDataSources") or []:
        uris.append((channel.get("S3DataSource") or {}).get("S3Uri") or "")
    return [uri for uri in uris if uri]


def kept_prefixes(container: dict[str, Any], bucket: str, folder: str) -> tuple[tuple[str, str], ...]:
    """``(bucket, key prefix)`` of each S3Prefix source a container reads inside ``folder``, without its
    trailing '/' so a snapshot's marker (``<commit>.json``) is kept with its files."""
    kept = []
    for uri in uris_read(container):
        found_bucket, _, key = uri.removeprefix("s3://").partition("/")
        if uri.startswith("s3://") and key.endswith("/") and found_bucket == bucket and key.startswith(folder):
            kept.append((bucket, key.rstrip("/")))
    return tuple(kept)
