"""The SageMaker requests a DjlEndpoint turns into (pure functions).

The reconciler sends exactly these, and ``djl-operator render`` writes them
to requests.json, so what a user previews is what the operator does.

Container environment: none. Everything DJL needs is in serving.properties
inside the content-addressed artifact. DJL reads ``OPTION_*`` (and LMI's
``HF_MODEL_ID``) environment variables *over* serving.properties, so setting
them here would be a second source of truth that the artifact hash does not
cover.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from djl_operator.api import DjlEndpointSpec
from djl_operator.errors import SpecError

VARIANT_NAME = "AllTraffic"

# Instance families with local NVMe instance storage. SageMaker encrypts those
# volumes in hardware and rejects both KmsKeyId on the endpoint config and
# VolumeSizeInGB on the variant for them (CreateEndpointConfig API reference).
LOCAL_STORAGE_FAMILIES = frozenset(
    {
        "c5d", "c6gd", "m5d", "m6gd", "r5d", "r6gd", "r7gd",
        "dl1", "g4dn", "g5", "g6", "g6e",
        "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6-b200", "p6-b300", "p6e-gb200",
        "trn1", "trn1n", "trn2",
    }
)  # fmt: skip
_FAMILY = re.compile(r"^ml\.([a-z0-9-]+)\.")


def has_local_storage(instance_type: str) -> bool:
    match = _FAMILY.match(instance_type)
    return bool(match and match.group(1) in LOCAL_STORAGE_FAMILIES)


def sagemaker_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """``{"k": "v"}`` -> ``[{"Key": "k", "Value": "v"}]``, sorted so requests compare equal."""
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def create_model_request(
    spec: DjlEndpointSpec,
    *,
    model_name: str,
    image_uri: str,
    model_data_url: str,
    tags: Mapping[str, str],
    container: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """CreateModel: the DJL container with the artifact as its model data (``container``: a served
    snapshot's, reading ModelDataSource and the weights channel instead, see :mod:`djl_operator.model_data`)."""
    request: dict[str, Any] = {
        "ModelName": model_name,
        "ExecutionRoleArn": spec.aws.execution_role_arn,
        "PrimaryContainer": container or {"Image": image_uri, "ModelDataUrl": model_data_url},
    }
    if spec.model.network_isolation:
        request["EnableNetworkIsolation"] = True
    if tags:
        request["Tags"] = sagemaker_tags(tags)
    return request


def production_variant(spec: DjlEndpointSpec, *, model_name: str) -> dict[str, Any]:
    """The one production variant: instance type and count plus the large-model timeouts."""
    instance = spec.instance
    variant: dict[str, Any] = {
        "VariantName": VARIANT_NAME,
        "ModelName": model_name,
        "InstanceType": instance.type,
        "InitialInstanceCount": instance.count,
    }
    if spec.timeouts.model_data_download_seconds is not None:
        variant["ModelDataDownloadTimeoutInSeconds"] = spec.timeouts.model_data_download_seconds
    if spec.timeouts.container_startup_health_check_seconds is not None:
        variant["ContainerStartupHealthCheckTimeoutInSeconds"] = spec.timeouts.container_startup_health_check_seconds
    if instance.volume_size_gb is not None:
        if has_local_storage(instance.type):
            raise SpecError(
                "spec.instance.volumeSizeGB",
                f"{instance.type} uses local NVMe instance storage; SageMaker accepts a volume size "
                "only for EBS-backed instance types. Remove volumeSizeGB.",
            )
        variant["VolumeSizeInGB"] = instance.volume_size_gb
    return variant


def create_endpoint_config_request(
    spec: DjlEndpointSpec, *, config_name: str, model_name: str, tags: Mapping[str, str]
) -> dict[str, Any]:
    """CreateEndpointConfig with the single ``AllTraffic`` variant.

    ``KmsKeyId`` (from ``spec.aws.kmsKeyId``) encrypts the instances' EBS
    volume; it is left out for local-storage instance types, whose volumes are
    hardware-encrypted and for which SageMaker refuses the parameter. The key
    still encrypts the artifact in S3.
    """
    request: dict[str, Any] = {
        "EndpointConfigName": config_name,
        "ProductionVariants": [production_variant(spec, model_name=model_name)],
    }
    if spec.aws.kms_key_id is not None and not has_local_storage(spec.instance.type):
        request["KmsKeyId"] = spec.aws.kms_key_id
    if tags:
        request["Tags"] = sagemaker_tags(tags)
    return request


def create_endpoint_request(*, endpoint_name: str, config_name: str, tags: Mapping[str, str]) -> dict[str, Any]:
    """CreateEndpoint serving ``config_name``."""
    request: dict[str, Any] = {"EndpointName": endpoint_name, "EndpointConfigName": config_name}
    if tags:
        request["Tags"] = sagemaker_tags(tags)
    return request


def update_endpoint_request(
    *,
    endpoint_name: str,
    config_name: str,
    instance_count_changed: bool,
    deployment_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """UpdateEndpoint to ``config_name``, keeping what autoscaling set, moving traffic as
    ``deployment_config`` (spec.rollout, see djl_operator.rollout) says.

    Without ``RetainAllVariantProperties`` SageMaker resets the live instance
    count to the config's initial count; it is only let through when the spec's
    count itself changed.
    """
    request: dict[str, Any] = {
        "EndpointName": endpoint_name,
        "EndpointConfigName": config_name,
        "RetainAllVariantProperties": True,
    }
    if instance_count_changed:
        request["ExcludeRetainedVariantProperties"] = [{"VariantPropertyType": "DesiredInstanceCount"}]
    if deployment_config is not None:
        request["DeploymentConfig"] = deployment_config
    return request
