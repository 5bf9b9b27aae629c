"""The S3 adapter (find / create / delete) against the emulator's S3, and garbage collection through it."""

from __future__ import annotations

from typing import Any

import pytest

from djl_operator.artifact_store import ArtifactStore
from djl_operator.errors import ArtifactStoreError
from djl_operator.planner import ArtifactFolder
from tests.integration.test_upload import BUCKET, UID, built, make_spec

FOLDER = ArtifactFolder(BUCKET, f"p/ns/demo/{UID}/")


@pytest.fixture
def store(emulator: Any) -> ArtifactStore:
    client = emulator.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return ArtifactStore(client)


def _put(store: ArtifactStore, *keys: str) -> None:
    for key in keys:
        store.s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")


def test_find_lists_only_the_folder(store: ArtifactStore) -> None:
    _put(store, f"p/ns/demo/{UID}/a/model.tar.gz", f"p/ns/demo/{UID}/b/model.tar.gz", "p/ns/demo-2/x/model.tar.gz")
    assert store.find(FOLDER) == (f"p/ns/demo/{UID}/a/model.tar.gz", f"p/ns/demo/{UID}/b/model.tar.gz")


def test_find_in_a_missing_bucket_is_empty(store: ArtifactStore) -> None:
    assert store.find(ArtifactFolder("no-such-bucket", "p/")) == ()


def test_delete_removes_exactly_the_keys_in_batches(store: ArtifactStore, emulator: Any) -> None:
    keys = tuple(f"p/ns/demo/{UID}/{i:04d}/model.tar.gz" for i in range(1005))
    emulator.put_objects(BUCKET, list(keys), b"x")  # a signed PUT each would take most of the test
    assert store.find(FOLDER) == keys
    emulator.reset_calls()
    store.delete(BUCKET, keys[:1001])
    assert store.find(FOLDER) == keys[1001:]
    assert len(emulator.calls(service="s3", operation="DeleteObjects")) == 2  # 1000 keys per request at most
    store.delete(BUCKET, keys[:1001])  # repeatable: gone is done
    store.delete("no-such-bucket", keys[:1])


def test_delete_folder_and_create(store: ArtifactStore) -> None:
    spec = make_spec(artifactPrefix="p")
    result = store.create(spec, namespace="ns", name="demo", owner_uid=UID, pkg=built())
    assert result.uploaded and store.find(FOLDER) == (result.key,)
    assert not store.create(spec, namespace="ns", name="demo", owner_uid=UID, pkg=built()).uploaded
    store.delete_folder(FOLDER)
    assert store.find(FOLDER) == ()


def test_a_denied_delete_names_the_action(store: ArtifactStore, emulator: Any) -> None:
    _put(store, f"p/ns/demo/{UID}/a/model.tar.gz")
    emulator.faults.deny("DeleteObjects")
    with pytest.raises(ArtifactStoreError, match="s3:DeleteObject"):
        store.delete(BUCKET, (f"p/ns/demo/{UID}/a/model.tar.gz",))
    emulator.faults.deny("ListObjectsV2")
    with pytest.raises(ArtifactStoreError, match="s3:ListBucket"):
        store.find(FOLDER)
