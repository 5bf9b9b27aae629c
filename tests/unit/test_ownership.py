"""Ownership proofs: what the operator remembers about tags it has seen, and what it deletes through a model."""

from __future__ import annotations

from typing import Any

import pytest

from djl_operator import model_data
from djl_operator.artifact_store import folder_of, folder_of_container
from djl_operator.planner import ArtifactFolder
from djl_operator.sagemaker_adapter import OwnershipProofs

ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ns-demo"
UID = "0b7c1d6e-5f4a-4e3b-9c2d-1a0f9e8d7c6b"


def test_a_proof_holds_only_for_the_endpoint_it_was_seen_on() -> None:
    proofs = OwnershipProofs()
    proofs.remember(ARN, "2026-11-26 10:00:00", UID)
    assert proofs.known(ARN, "2026-11-26 10:00:00", UID)
    # Deleted and recreated by someone else: same name, same ARN, another creation time.
    assert not proofs.known(ARN, "2026-11-26 11:00:00", UID)
    assert not proofs.known(ARN, "2026-11-26 10:00:00", "another-uid")


def test_an_endpoint_we_created_binds_to_the_first_creation_time_seen() -> None:
    proofs = OwnershipProofs()
    proofs.remember(ARN, None, UID)
    assert proofs.known(ARN, "t1", UID)
    assert proofs.known(ARN, "t1", UID)
    assert not proofs.known(ARN, "t2", UID)


def test_proofs_are_bounded_and_forgotten_with_their_owner() -> None:
    proofs = OwnershipProofs(max_entries=2)
    for i in range(3):
        proofs.remember(f"{ARN}{i}", "t", UID)
    assert not proofs.known(f"{ARN}0", "t", UID)
    assert proofs.known(f"{ARN}2", "t", UID)
    proofs.forget_owner(UID)
    assert not proofs.known(f"{ARN}2", "t", UID)


SHA = "ab" * 32
COMMIT = "c" * 40


@pytest.mark.parametrize(
    ("url", "folder"),
    [
        (f"s3://b/djl-operator/ns/demo/{UID}/{SHA}/model.tar.gz", ("b", f"djl-operator/ns/demo/{UID}/")),
        (f"s3://b/x/y/ns/demo/{UID}/{SHA}/model.tar.gz", ("b", f"x/y/ns/demo/{UID}/")),
        (f"s3://b/ns/demo/another-uid/{SHA}/model.tar.gz", None),  # not this owner's folder
        (f"s3://b/{UID}/{SHA}/model.tar.gz", None),  # not our layout
        (f"s3://b/ns/demo/{UID}/{SHA}/weights.bin", None),
        # A served snapshot: its files' ModelDataSource prefix and its weights channel (S3Prefix, '/').
        (f"s3://b/p/ns/demo/{UID}/{SHA}/model/", ("b", f"p/ns/demo/{UID}/")),
        (f"s3://b/p/ns/demo/{UID}/snapshots/{COMMIT}/", ("b", f"p/ns/demo/{UID}/")),
        (f"s3://b/p/ns/demo/{UID}/snapshots/{COMMIT}", None),  # not a prefix
        (f"s3://b/p/ns/demo/{UID}/snapshots/main/", None),  # not a commit
        (f"s3://b/p/ns/demo/{UID}/{SHA}/other/", None),
        (f"s3://b/p/ns/demo/another-uid/{SHA}/model/", None),
        (f"s3://b/p/ns/demo/another-uid/snapshots/{COMMIT}/", None),
        (f"s3://b/{UID}/snapshots/{COMMIT}/", None),  # not our layout
        ("https://example.com/model.tar.gz", None),
        ("", None),
    ],
)
def test_only_this_owners_artifact_folder_is_deleted_through_a_model(url: str, folder: tuple[str, str] | None) -> None:
    assert folder_of(url, UID) == (ArtifactFolder(*folder) if folder else None)


@pytest.mark.parametrize(
    ("container", "folder"),
    [
        ({"ModelDataUrl": f"s3://b/p/ns/demo/{UID}/{SHA}/model.tar.gz"}, ("b", f"p/ns/demo/{UID}/")),
        (
            {"ModelDataSource": {"S3DataSource": {"S3Uri": f"s3://b/p/ns/demo/{UID}/{SHA}/model/"}}},
            ("b", f"p/ns/demo/{UID}/"),
        ),
        (
            {
                "ModelDataSource": {"S3DataSource": {"S3Uri": "s3://elsewhere/weights/"}},
                "AdditionalModelDataSources": [
                    {"ChannelName": "w", "S3DataSource": {"S3Uri": f"s3://b/p/ns/demo/{UID}/snapshots/{COMMIT}/"}}
                ],
            },
            ("b", f"p/ns/demo/{UID}/"),
        ),
        ({"ModelDataSource": {"S3DataSource": {"S3Uri": "s3://elsewhere/weights/"}}}, None),
        ({"Image": "i"}, None),
    ],
)
def test_a_models_folder_is_read_from_every_data_source(
    container: dict[str, Any], folder: tuple[str, str] | None
) -> None:
    assert folder_of_container(container, UID) == (ArtifactFolder(*folder) if folder else None)


def test_a_live_snapshot_model_keeps_its_files_and_its_commit_with_the_marker() -> None:
    folder = f"p/ns/demo/{UID}/"
    container = {
        "ModelDataSource": {"S3DataSource": {"S3Uri": f"s3://b/{folder}{SHA}/model/"}},
        "AdditionalModelDataSources": [
            {"ChannelName": "weights", "S3DataSource": {"S3Uri": f"s3://b/{folder}snapshots/{COMMIT}/"}},
            {"ChannelName": "other", "S3DataSource": {"S3Uri": "s3://b/someone-else/w/"}},  # not in the folder
        ],
    }
    assert model_data.kept_prefixes(container, "b", folder) == (
        ("b", f"{folder}{SHA}/model"),
        ("b", f"{folder}snapshots/{COMMIT}"),
    )
    assert model_data.kept_prefixes(container, "other-bucket", folder) == ()
    assert model_data.kept_prefixes({"ModelDataUrl": f"s3://b/{folder}{SHA}/model.tar.gz"}, "b", folder) == ()
