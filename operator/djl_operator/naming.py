"""Deterministic SageMaker names and ownership tags (pure functions).

Models and endpoint configs are immutable in SageMaker, so each distinct
desired state gets its own name, ``<short cr name>-<hash>``; the same spec
always maps to the same names, which makes every create idempotent.
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


def short_name(name: str) -> str:
    """The CR name as it prefixes every model and config name of the resource."""
    return sanitize(name)[: MAX_NAME - HASH_LENGTH - 1].rstrip("-")


def versioned_name(cr_name: str, digest: str) -> str:
    """``<short cr name>-<hash>``: the name of a model or an endpoint config."""
    return _fit(short_name(cr_name), digest[:HASH_LENGTH])


def endpoint_name(namespace: str, name: str, explicit: str | None = None) -> str:
    """``spec.endpointName`` or ``<namespace>-<name>``, shortened with a hash when too long."""
    if explicit:
        return explicit
    base = sanitize(f"{namespace}-{name}")
    if len(base) <= MAX_NAME:
        return base
    return _fit(base, content_hash([namespace, name], 8))


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
    return any(t.get("Key") == TAG_OWNER_UID and t.get("Value") == uid for t in tags)
