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


# Families and engines upstream no longer moves forward (SageMaker SDK tables; djl-serving's LMI
# breaking-changes notes). They still resolve and deploy; status and one Warning event say so.
DEPRECATED_FRAMEWORKS: dict[str, str] = {
    "djl-deepspeed": "djl-deepspeed images are deprecated upstream (the SDK's newest is 0.27.0); "
    "move to spec.image.framework djl-lmi",
    "djl-neuronx": "djl-neuronx is frozen at 0.29.0 (the Neuron code left DJL upstream in November 2025)",
}
DEPRECATED_ENGINES: dict[str, str] = {
    "DeepSpeed": "engine DeepSpeed exists only in the deprecated djl-deepspeed images (LMI 0.28+ dropped it); "
    "use engine Python on djl-lmi",
}


def deprecation_notice(spec: DjlEndpointSpec) -> str | None:
    """Why the spec's image family or engine is deprecated, or None. Never a failure."""
    notes = []
    if spec.image.uri is None and spec.image.framework.value in DEPRECATED_FRAMEWORKS:
        notes.append(DEPRECATED_FRAMEWORKS[spec.image.framework.value])
    if spec.model.engine.value in DEPRECATED_ENGINES:
        notes.append(DEPRECATED_ENGINES[spec.model.engine.value])
    return "; ".join(notes) or None


KNOWN_FRAMEWORKS = ("djl-lmi", "djl-tensorrtllm", "djl-deepspeed", "djl-neuronx")


def table_images(framework: str, region: str) -> tuple[str, ...]:
    """Every image the tables list for ``framework`` in ``region``, newest first."""
    found = []
    for version in available_versions(framework):
        if region in registries(framework, version):
            found.append(image_uri(framework, region, version))
    return tuple(found)


def pinned_image_uri(spec: DjlEndpointSpec, live_image: str | None) -> str | None:
    """The image a deployed resource keeps: ``live_image`` when the spec leaves the version
    to the tables (no uri, no version) and the live image is one of this family's images in
    this region. A newer SDK table then changes nothing until spec.image does.

    ``live_image`` must come from AWS (DescribeModel of a model the owner tag proves ours),
    never from status, which users can write.
    """
    if live_image is None or spec.image.uri is not None or spec.image.version is not None:
        return None
    # A spec that names no family kept whichever family the operator of its day defaulted to.
    families = KNOWN_FRAMEWORKS if spec.framework_defaulted else (spec.image.framework.value,)
    for family in families:
        try:
            known = table_images(family, spec.aws.region)
        except (SpecError, ImageTablesUnavailableError):
            continue
        if live_image in known:
            return live_image
    return None


def newer_image_uri(spec: DjlEndpointSpec, current: str) -> str | None:
    """The newest image of the spec's family when it is newer than ``current`` (a table image), else None."""
    if spec.image.uri is not None:
        return None
    try:
        known = table_images(spec.image.framework.value, spec.aws.region)
    except (SpecError, ImageTablesUnavailableError):
        return None
    if current not in known or known[0] == current:
        return None
    return known[0]
