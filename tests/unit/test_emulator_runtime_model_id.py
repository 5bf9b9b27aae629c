"""The pure pieces of the emulator runtime's s3:// model id download."""

from __future__ import annotations

from pathlib import Path

import pytest

from djl_operator_kit.emulator.runtime import relative_key, split_s3_prefix, with_property


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket/models/minilm/", ("bucket", "models/minilm/")),
        ("s3://bucket/models/minilm", ("bucket", "models/minilm/")),  # a folder, never a key prefix
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
    ],
)
def test_split_s3_prefix(url: str, expected: tuple[str, str]) -> None:
    assert split_s3_prefix(url) == expected


@pytest.mark.parametrize("url", ["s3:///models", "https://bucket/models", "bucket/models"])
def test_split_s3_prefix_refuses_non_s3_urls(url: str) -> None:
    with pytest.raises(ValueError, match="is not an s3://bucket"):
        split_s3_prefix(url)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("m/config.json", Path("config.json")),
        ("m/1_Pooling/config.json", Path("1_Pooling/config.json")),
        ("m/", None),  # the prefix's own folder marker
        ("m/sub/", None),  # a folder marker
        ("m/../escape", None),
        ("m//double", None),
        ("m/./dot", None),
        ("other/config.json", None),
    ],
)
def test_relative_key(key: str, expected: Path | None) -> None:
    assert relative_key(key, "m/") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "engine=Python\noption.model_id=s3://b/m/\noption.task=feature-extraction\n",
            "engine=Python\noption.model_id=/local\noption.task=feature-extraction\n",
        ),
        # comments and the other spellings of a property line are understood
        (
            "# option.model_id=s3://old\noption.model_id : s3://b/m\n",
            "# option.model_id=s3://old\noption.model_id=/local\n",
        ),
        # every line that sets it goes, the first keeps its place
        ("option.model_id=a\nx=1\noption.model_id=b\n", "option.model_id=/local\nx=1\n"),
        # a key that merely starts the same is another key
        ("option.model_id_extra=s3://b\n", "option.model_id_extra=s3://b\noption.model_id=/local\n"),
        ("", "option.model_id=/local\n"),
    ],
)
def test_with_property(text: str, expected: str) -> None:
    assert with_property(text, "option.model_id", "/local") == expected
