"""The operator policy: what a DjlEndpoint may run, as the cluster admin decides.

Whoever may create a DjlEndpoint runs code under the execution role they name
(a custom image, ``trust_remote_code``, pip packages). The admin bounds that with
a YAML file, usually a ConfigMap mounted into the operator's pod, named by
``DJL_OPERATOR_POLICY_FILE``. Without one the safe defaults apply::

    # Images from the DJL registries in the SageMaker SDK's tables (always for
    # spec.image.framework; spec.image.uri must match one of these or allowedImages).
    allowSdkImages: true
    # More spec.image.uri patterns: '*' matches within one '/'-separated part, '**' anything.
    allowedImages: []
    # option.trust_remote_code (or trust_remote_code) other than "false".
    allowTrustRemoteCode: false
    # --index-url / --extra-index-url and `name @ https://...` in spec.model.requirements.
    allowPipIndexOptions: false
    # Execution role ARN patterns per namespace ("*": every other namespace);
    # omitted: any role. A namespace with no entry and no "*" may use none.
    allowedExecutionRoles: null
    # spec.instance.count at most this.
    maxInstanceCount: 10

:func:`check` is pure: it raises :class:`~djl_operator.errors.PolicyError`
naming the field and the rule, before anything touches AWS.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from djl_operator.api import DjlEndpointResource, DjlEndpointSpec, ImageFramework
from djl_operator.artifacts import images
from djl_operator.artifacts.render import RequirementKind, base_key, classify_requirement, property_field
from djl_operator.errors import PolicyError

POLICY_FILE_ENV = "DJL_OPERATOR_POLICY_FILE"
DEFAULT_MAX_INSTANCE_COUNT = 10


class Policy(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    allow_sdk_images: bool = True
    allowed_images: tuple[str, ...] = ()
    allow_trust_remote_code: bool = False
    allow_pip_index_options: bool = False
    allowed_execution_roles: dict[str, tuple[str, ...]] | None = None
    max_instance_count: int = Field(default=DEFAULT_MAX_INSTANCE_COUNT, ge=1)

    @classmethod
    def from_file(cls, path: Path) -> Policy:
        """Read a policy file; a bad one is an error at start-up, naming the file and the key."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"operator policy {path}: {exc}") from exc
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError(f"operator policy {path}: expected a mapping of settings")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"operator policy {path}: {key}: {first['msg']}") from None

    @classmethod
    def from_env(cls) -> Policy:
        path = os.environ.get(POLICY_FILE_ENV)
        return cls.from_file(Path(path)) if path else cls()


@functools.cache
def _glob(pattern: str) -> re.Pattern[str]:
    parts = []
    for token in re.split(r"(\*\*|\*|\?)", pattern):
        if token == "**":
            parts.append(".*")
        elif token == "*":
            parts.append("[^/]*")
        elif token == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts), re.DOTALL)


def matches(pattern: str, text: str) -> bool:
    """Glob match: ``*`` and ``?`` stay within one ``/``-separated part, ``**`` crosses them."""
    return _glob(pattern).fullmatch(text) is not None


@functools.cache
def sdk_registries() -> frozenset[str]:
    """``<account>.dkr.<ECR host>`` of every DJL image the SageMaker SDK's tables list."""
    accounts: set[tuple[str, str]] = set()
    for framework in ImageFramework:
        for version in images.available_versions(framework.value):
            accounts.update(images.registries(framework.value, version).items())
    return frozenset(f"{account}.dkr.{images.ecr_hostname(region)}" for region, account in accounts)


def _check_image(spec: DjlEndpointSpec, policy: Policy) -> None:
    uri = spec.image.uri
    if uri is None:
        return  # resolved from the SDK's tables
    if policy.allow_sdk_images and uri.split("/", 1)[0] in sdk_registries():
        return
    if any(matches(pattern, uri) for pattern in policy.allowed_images):
        return
    allowed = "the DJL registries of the SageMaker SDK" if policy.allow_sdk_images else "no SDK registry"
    raise PolicyError(
        "spec.image.uri",
        "allowedImages",
        f"{uri!r} is not an allowed image ({allowed}; patterns: {list(policy.allowed_images)})",
    )


def _check_properties(spec: DjlEndpointSpec, policy: Policy) -> None:
    if policy.allow_trust_remote_code:
        return
    for key, value in spec.model.properties.items():
        if base_key(key) == "trust_remote_code" and value.strip().lower() != "false":
            raise PolicyError(
                property_field(key),
                "allowTrustRemoteCode",
                "running code from the model repository is not allowed by the operator policy",
            )


def _check_requirements(spec: DjlEndpointSpec, policy: Policy) -> None:
    for index, entry in enumerate(spec.model.requirements):
        kind, _ = classify_requirement(index, entry)
        if kind is not RequirementKind.NAMED and not policy.allow_pip_index_options:
            raise PolicyError(
                f"spec.model.requirements[{index}]",
                "allowPipIndexOptions",
                f"{kind.value}s are not allowed by the operator policy; name a project from the default index",
            )


def _check_role(spec: DjlEndpointSpec, namespace: str | None, policy: Policy) -> None:
    roles = policy.allowed_execution_roles
    if roles is None:
        return
    patterns = roles.get(namespace or "", roles.get("*", ()))
    arn = spec.aws.execution_role_arn
    if not any(matches(pattern, arn) for pattern in patterns):
        raise PolicyError(
            "spec.aws.executionRoleArn",
            "allowedExecutionRoles",
            f"{arn!r} is not allowed in namespace {namespace!r} (allowed: {list(patterns)})",
        )


def check(resource_or_spec: DjlEndpointResource | DjlEndpointSpec, policy: Policy) -> None:
    """Raise :class:`PolicyError` for the first thing ``policy`` does not allow; pure, no AWS calls."""
    if isinstance(resource_or_spec, DjlEndpointResource):
        spec, namespace = resource_or_spec.spec, resource_or_spec.namespace
    else:
        spec, namespace = resource_or_spec, None
    _check_image(spec, policy)
    _check_properties(spec, policy)
    _check_requirements(spec, policy)
    _check_role(spec, namespace, policy)
    if spec.instance.count > policy.max_instance_count:
        raise PolicyError(
            "spec.instance.count",
            "maxInstanceCount",
            f"{spec.instance.count} instances; the operator policy allows at most {policy.max_instance_count}",
        )


def describe(policy: Policy) -> dict[str, Any]:
    """The policy in force, as the file would spell it (logged at start-up)."""
    return policy.model_dump(by_alias=True)
