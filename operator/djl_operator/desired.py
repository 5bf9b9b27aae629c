"""What a DjlEndpoint asks for, computed locally (no AWS calls).

Renders and packages the artifact (deterministic, so its sha256 is stable),
resolves the image, and derives the content-addressed names and the exact
SageMaker requests. Any problem here is a spec problem: it raises
:class:`~djl_operator.errors.SpecError` before anything touches AWS.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import Any

from djl_operator import bytecache, model_data, naming, pinning, policy, scaling
from djl_operator.api import DjlEndpointResource, DjlEndpointSpec
from djl_operator.artifacts import images, package, requests
from djl_operator.planner import Desired, ObservedEndpoint


@dataclass(frozen=True)
class OwnedScope:
    """Where the current spec puts what one resource creates.

    Earlier specs may have used other buckets and prefixes: those are found
    through the owner-tagged models that point at them, never through status.
    """

    uid: str
    region: str
    bucket: str
    artifact_prefix: str  # every artifact of the resource in this bucket lives under it


def owned_scope(resource: DjlEndpointResource) -> OwnedScope:
    aws = resource.spec.aws
    return OwnedScope(
        uid=resource.uid,
        region=aws.region,
        bucket=aws.artifact_bucket,
        artifact_prefix=package.resource_prefix(aws.artifact_prefix, resource.namespace, resource.name, resource.uid),
    )


@dataclass(frozen=True)
class DesiredDeployment:
    target: Desired
    package: package.Package
    artifact_key: str
    scope: OwnedScope
    image_uri: str
    model_request: dict[str, Any]
    config_request: dict[str, Any]
    endpoint_request: dict[str, Any]
    instance_count: int
    # A deprecated image family or engine (status note and one Warning event; never a failure).
    image_notice: str | None = None
    # A newer image of the same family than the one kept (status only: nothing redeploys for it).
    newer_image_uri: str | None = None
    # A served snapshot: the key prefix of the artifact's files, uncompressed (ModelDataSource), and
    # the key prefix of the commit's files (the weights channel); artifact_key is then files_prefix.
    files_prefix: str | None = None
    weights_prefix: str | None = None

    def on_endpoint(self, endpoint_name: str) -> DesiredDeployment:
        """The same deployment, served by the endpoint ``endpoint_name``."""
        return dataclasses.replace(
            self,
            target=dataclasses.replace(self.target, endpoint_name=endpoint_name),
            endpoint_request={**self.endpoint_request, "EndpointName": endpoint_name},
        )

    @property
    def artifact_uri(self) -> str:
        return f"s3://{self.scope.bucket}/{self.artifact_key}"

    @property
    def artifact_keys(self) -> tuple[str, ...]:
        """Every key the artifact is stored at: model.tar.gz, or a served snapshot's files."""
        if self.files_prefix is None:
            return (self.artifact_key,)
        return tuple(self.files_prefix + path for path in sorted(self.package.files))

    @property
    def kept_prefixes(self) -> tuple[tuple[str, str], ...]:
        """``(bucket, key prefix)`` the model reads besides ``artifact_key``: a served snapshot's files
        and its commit (the marker ``<commit>.json`` included). Garbage collection keeps them."""
        if self.files_prefix is None or self.weights_prefix is None:
            return ()
        bucket = self.scope.bucket
        return (bucket, self.files_prefix), (bucket, self.weights_prefix.rstrip("/"))


@bytecache.bounded_by_bytes(64 * 2**20, lambda built: len(built.data) + sum(map(len, built.files.values())))
def _package_for(spec_json: str) -> package.Package:
    """Packages are pure functions of the spec; every poll and resync needs the sha256, so build each once."""
    return package.build_package(DjlEndpointSpec.model_validate_json(spec_json))


@bytecache.bounded_by_bytes(16 * 2**20, lambda built: len(built.data) + sum(map(len, built.files.values())))
def _snapshot_package_for(spec_json: str) -> package.Package:
    """A served snapshot's files: option.model_id is where SageMaker mounts the weights channel."""
    spec = DjlEndpointSpec.model_validate_json(spec_json)
    model = spec.model.model_copy(update={"id": model_data.WEIGHTS_PATH})
    return package.build_package(spec.model_copy(update={"model": model}))


def desired_deployment(
    resource: DjlEndpointResource,
    template: Traversable | None = None,
    rules: policy.Policy | None = None,
    live_image: str | None = None,
) -> DesiredDeployment:
    """``live_image``: the image the owned endpoint serves now, read from AWS
    (``pinning.live_image``); a resource already deployed keeps it while spec.image
    leaves the version to the tables."""
    policy.check(resource, rules if rules is not None else policy.Policy())  # the admin's policy, before anything
    spec = resource.spec
    scaling.check(spec)
    scope = owned_scope(resource)
    bucket = spec.aws.artifact_bucket
    commit = model_data.served_commit(spec.model.id, bucket, scope.artifact_prefix)
    if commit is not None:
        # Validated again as the user's spec (networkIsolation stands without the snapshot flag here).
        plain = spec.model_copy(update={"model": spec.model.model_copy(update={"network_isolation": False})})
        built = _snapshot_package_for(plain.model_dump_json())
    else:
        built = package.build_package(spec, template) if template else _package_for(spec.model_dump_json())
    image_uri = images.pinned_image_uri(spec, live_image) or images.resolve_image_uri(spec)
    key = package.artifact_key(spec.aws.artifact_prefix, resource.namespace, resource.name, resource.uid, built.sha256)
    model_data_url = f"s3://{bucket}/{key}"
    files_prefix = weights_prefix = None
    container = None
    hashed: list[Any] = [built.sha256, model_data_url, image_uri, spec.aws.execution_role_arn]
    if commit is not None:
        files_prefix = model_data.files_prefix(scope.artifact_prefix, built.sha256)
        weights_prefix = f"{scope.artifact_prefix}{model_data.SNAPSHOTS_FOLDER}/{commit}/"
        key = files_prefix
        container = model_data.snapshot_container(
            image_uri, f"s3://{bucket}/{files_prefix}", f"s3://{bucket}/{weights_prefix}"
        )
        # The files, the commit mounted beside them (option.model_id names the mount, not the commit).
        hashed = [built.sha256, container, image_uri, spec.aws.execution_role_arn, spec.model.network_isolation]

    # A model is its artifact (where it lives, too), image and role; a config is its model and variant.
    # The names carry the owner's identity, so no two resources share one.
    model_hash = naming.content_hash(hashed)
    model_name = naming.versioned_name(resource.name, resource.uid, model_hash)
    variant = requests.production_variant(spec, model_name=model_name)
    config_hash = naming.content_hash([variant, spec.aws.kms_key_id])
    config_name = naming.versioned_name(resource.name, resource.uid, config_hash)

    tags = naming.owner_tags(resource.uid, resource.namespace, resource.name, config_hash, spec.aws.tags)
    endpoint = naming.endpoint_name(resource.namespace, resource.name, spec.endpoint_name)
    return DesiredDeployment(
        target=Desired(
            endpoint_name=endpoint,
            model_name=model_name,
            config_name=config_name,
            region=spec.aws.region,
            rollout_strategy=spec.rollout.strategy.value if spec.rollout else "AllAtOnce",
            rollback_alarms=tuple(spec.rollout.rollback_alarms) if spec.rollout else (),
        ),
        package=built,
        artifact_key=key,
        scope=scope,
        image_uri=image_uri,
        model_request=requests.create_model_request(
            spec,
            model_name=model_name,
            image_uri=image_uri,
            model_data_url=model_data_url,
            tags=tags,
            container=container,
        ),
        config_request=requests.create_endpoint_config_request(
            spec, config_name=config_name, model_name=model_name, tags=tags
        ),
        endpoint_request=requests.create_endpoint_request(endpoint_name=endpoint, config_name=config_name, tags=tags),
        instance_count=spec.instance.count,
        image_notice=images.deprecation_notice(spec),
        newer_image_uri=images.newer_image_uri(spec, image_uri),
        files_prefix=files_prefix,
        weights_prefix=weights_prefix,
    )


def keep_live_image(
    desired: DesiredDeployment,
    resource: DjlEndpointResource,
    sagemaker: Any,
    observed: ObservedEndpoint | None,
    rules: policy.Policy | None = None,
) -> DesiredDeployment:
    """``desired`` with the image the owned endpoint runs now kept, when the spec leaves the
    version to the tables (the reconciler's one hook, right after it observes the endpoint).

    At most two reads per endpoint config in a process's life (``pinning.live_image`` caches),
    none for a spec that names its version or URI."""
    if not pinning.needs_live_image(resource.spec):
        return desired
    live = pinning.live_image(sagemaker, observed, resource.uid)
    if live is None or live == desired.image_uri:
        return desired
    return desired_deployment(resource, rules=rules, live_image=live)
