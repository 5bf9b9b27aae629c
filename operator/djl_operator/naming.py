"""Deterministic SageMaker names and ownership tags (pure functions).

Models and endpoint configs are immutable in SageMaker, so each distinct
desired state gets its own name, ``<short cr name>-<owner id>-<hash>``; the
same spec of the same resource always maps to the same names, which makes
every create idempotent. The owner id (a hash of the resource's uid) keeps two
resources with the same name and spec (staging and prod namespaces) from ever
sharing a model or config. A derived endpoint name carries a hash of
``namespace/name`` so that ``team``/``a-x`` and ``team-a``/``x`` differ.

A name says nothing about ownership: that is proven only by the owner-uid tag.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

MAX_NAME = 63
HASH_LENGTH = 10

TAG_PREFIX = "djl-operator.io/"
TAG_MANAGED_BY = TAG_PREFIX + "managed-by"
TAG_OWNER_UID = TAG_PREFIX + "owner-uid"
TAG_NAMESPACE = TAG_PREFIX + "namespace"
TAG_NAME = TAG_PREFIX + "name"
TAG_SPEC_HASH = TAG_PREFIX + "spec-hash"
MANAGED_BY = "djl-operator"


def content_hash(value: Any, length: int = HASH_LENGTH) -> str:
    """A short, stable hash of any JSON-serialisable value."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def sanitize(text: str) -> str:
    """Map a Kubernetes name onto SageMaker's alphabet: letters, digits, single hyphens."""
    cleaned = re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-")
    return cleaned or "x"


def _fit(base: str, suffix: str) -> str:
    room = MAX_NAME - len(suffix) - 1
    return f"{base[:room].rstrip('-')}-{suffix}"


OWNER_ID_LENGTH = 8
ENDPOINT_HASH_LENGTH = 8


def owner_id(uid: str) -> str:
    """A short, stable identity of one Kubernetes object (its uid), for names."""
    return hashlib.sha256(uid.encode()).hexdigest()[:OWNER_ID_LENGTH]


def short_name(name: str) -> str:
    """The CR name as it prefixes every model and config name of the resource."""
    return sanitize(name)[: MAX_NAME - HASH_LENGTH - OWNER_ID_LENGTH - 2].rstrip("-")


def versioned_name(cr_name: str, uid: str, digest: str) -> str:
    """``<short cr name>-<owner id>-<hash>``: the name of a model or an endpoint config."""
    return f"{short_name(cr_name)}-{owner_id(uid)}-{digest[:HASH_LENGTH]}"


def endpoint_name(namespace: str, name: str, explicit: str | None = None) -> str:
    """``spec.endpointName``, or ``<namespace>-<name>-<hash of namespace/name>``.

    The hash makes derived names injective: sanitising joins namespace and name
    with '-', which both may contain, so the plain join collides.
    """
    if explicit:
        return explicit
    return _fit(sanitize(f"{namespace}-{name}"), content_hash([namespace, name], ENDPOINT_HASH_LENGTH))


def owner_tags(uid: str, namespace: str, name: str, spec_hash: str, extra: Mapping[str, str]) -> dict[str, str]:
    """Tags marking a SageMaker resource as ours; the user's tags come first, ours win."""
    ours = {
        TAG_MANAGED_BY: MANAGED_BY,
        TAG_OWNER_UID: uid,
        TAG_NAMESPACE: namespace,
        TAG_NAME: name,
        TAG_SPEC_HASH: spec_hash,
    }
    return {**{k: v for k, v in extra.items() if not k.startswith(TAG_PREFIX)}, **ours}


def is_owned_by(tags: list[dict[str, str]], uid: str) -> bool:
    return bool(uid) and any(t.get("Key") == TAG_OWNER_UID and t.get("Value") == uid for t in tags)


def name_from_arn(arn: str, kind: str) -> str | None:
    """The (lower-cased, as AWS prints it) name in a SageMaker ARN of ``kind`` (``endpoint``, ``model``...)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sagemaker":
        return None
    found_kind, _, name = parts[5].partition("/")
    return name if found_kind == kind and name else None


def legacy_endpoint_name(namespace: str, name: str) -> str:
    """The endpoint name operator versions before owner-aware names derived (``<namespace>-<name>``).

    Only ever *kept* for a resource whose endpoint already has it and carries its owner tag, so
    an upgrade does not change the URL clients call; nothing new is created under it.
    """
    base = sanitize(f"{namespace}-{name}")
    return base if len(base) <= MAX_NAME else _fit(base, content_hash([namespace, name], 8))
