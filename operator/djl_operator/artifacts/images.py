"""DJL Serving container image URIs, from the SageMaker SDK's own tables.

The SageMaker SDK (``sagemaker-core``) publishes which DJL containers exist in
which region as JSON files under ``sagemaker/core/image_uri_config/``.
``sagemaker.core.image_uris.retrieve`` reads them, but importing it costs about
1.3 s and 165 MB of memory (it pulls in pandas, scipy and the SDK's generated
shapes), which an operator should not pay to look up a string. So this module
reads the same JSON files directly, located through the installed
distribution's file list, without importing the ``sagemaker`` package, and
applies the same rule ``retrieve`` applies to the DJL families
(``<registry>.dkr.<ecr hostname>/<repository>:<tag_prefix>``).
``tests/unit/test_images.py`` checks the result against ``retrieve`` itself
for every version and region the tables list.

The tables are read lazily (first use) and cached for the life of the process.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from typing import Any

from djl_operator.api import DjlEndpointSpec
from djl_operator.errors import SpecError

SDK_DISTRIBUTION = "sagemaker-core"
_TABLE_DIR = "sagemaker/core/image_uri_config"
_SCOPE = "inference"

FRAMEWORK_FIELD = "spec.image.framework"
VERSION_FIELD = "spec.image.version"
REGION_FIELD = "spec.aws.region"


class ImageTablesUnavailableError(RuntimeError):
    """``sagemaker-core`` is not installed, so images cannot be resolved by name."""


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@functools.cache
def sdk_version() -> str:
    """Version of the installed ``sagemaker-core`` (quoted in error messages)."""
    try:
        return importlib.metadata.version(SDK_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ImageTablesUnavailableError(
            f"the {SDK_DISTRIBUTION} package is not installed: install it, or set spec.image.uri"
        ) from exc


@functools.cache
def _table(framework: str) -> dict[str, Any]:
    sdk_version()  # a clear error when the package is missing
    dist = importlib.metadata.distribution(SDK_DISTRIBUTION)
    path = dist.locate_file(f"{_TABLE_DIR}/{framework}.json")
    try:
        with open(str(path), encoding="utf-8") as fh:
            table: dict[str, Any] = json.load(fh)
    except FileNotFoundError:
        raise SpecError(
            FRAMEWORK_FIELD,
            f"{framework!r} is not an image family the SageMaker SDK knows ({SDK_DISTRIBUTION} {sdk_version()})",
        ) from None
    if _SCOPE not in table.get("scope", [_SCOPE]):
        raise SpecError(FRAMEWORK_FIELD, f"{framework!r} has no inference images")
    return table


def available_versions(framework: str) -> tuple[str, ...]:
    """Versions the tables list for ``framework``, newest first."""
    return tuple(sorted(_table(framework)["versions"], key=_version_key, reverse=True))


def available_regions(framework: str, version: str) -> tuple[str, ...]:
    return tuple(sorted(_table(framework)["versions"][version]["registries"]))


def registries(framework: str, version: str) -> dict[str, str]:
    """Region -> ECR registry account of ``framework`` at ``version``."""
    return dict(_table(framework)["versions"][version]["registries"])


def _pick_version(framework: str, requested: str | None) -> str:
    known = available_versions(framework)
    if requested is None:
        return known[0]
    if requested in known:
        return requested
    # "0.22" means the newest patch release of 0.22 ("0.22.1").
    patches = [v for v in known if v.startswith(requested + ".") and requested.count(".") == 1]
    if patches:
        return patches[0]
    raise SpecError(
        VERSION_FIELD,
        f"{framework} {requested} is not in the SageMaker SDK's image tables "
        f"({SDK_DISTRIBUTION} {sdk_version()}); known versions: {', '.join(known)}",
    )


@functools.cache
def _endpoint_resolver() -> Any:
    import botocore.loaders
    import botocore.regions

    return botocore.regions.EndpointResolver(botocore.loaders.create_loader().load_data("endpoints"))


@functools.cache
def ecr_hostname(region: str) -> str:
    """ECR's hostname in ``region`` (``ecr.<region>.amazonaws.com``, ``.com.cn`` in China).

    Taken from botocore's endpoint data, as the SDK does, so partitions with
    other DNS suffixes come out right.
    """
    endpoint = _endpoint_resolver().construct_endpoint("ecr", region)
    if endpoint and endpoint.get("hostname"):
        return str(endpoint["hostname"])
    return f"ecr.{region}.amazonaws.com"


@functools.cache
def image_uri(framework: str, region: str, version: str | None = None) -> str:
    """The image URI for ``framework`` (e.g. ``djl-lmi``) at ``version`` in ``region``.

    ``version=None`` picks the newest version listed. Raises :class:`SpecError`
    naming ``spec.image.framework``, ``spec.image.version`` or ``spec.aws.region``.
    """
    chosen = _pick_version(framework, version)
    entry = _table(framework)["versions"][chosen]
    registries: dict[str, str] = entry["registries"]
    if region not in registries:
        raise SpecError(
            REGION_FIELD,
            f"{framework} {chosen} is not published in region {region!r} (it is in: {', '.join(sorted(registries))})",
        )
    tag = entry.get("tag_prefix", chosen)
    return f"{registries[region]}.dkr.{ecr_hostname(region)}/{entry['repository']}:{tag}"


def resolve_image_uri(spec: DjlEndpointSpec) -> str:
    """The container image for ``spec``: ``spec.image.uri`` when set, else from the tables."""
    if spec.image.uri:
        return spec.image.uri
    return image_uri(spec.image.framework.value, spec.aws.region, spec.image.version)
