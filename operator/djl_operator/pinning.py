"""Image pinning: an operator upgrade never redeploys an endpoint by itself.

A spec without ``spec.image.version`` resolves to the newest image the SageMaker
SDK's tables list, and a newer operator ships newer tables. Once a resource is
deployed, the image it keeps is read back from AWS: the live endpoint's config,
its model (proven ours by the owner-uid tag), and that model's container image.
Status is never read for it (tenants can write status). ``live_image`` is the
one AWS read (two calls, once per endpoint config: the answer is cached);
``reconcile`` passes it to ``desired_deployment(live_image=...)``.
"""

from __future__ import annotations

import threading
from typing import Any

from djl_operator.planner import ObservedEndpoint

# Config names are content-addressed (their model, hence its image, is in the hash), so what a
# config serves never changes: each is read once per process, not on every resync.
_MAX_CACHED = 10_000
_cache: dict[tuple[str, str], str] = {}
_cache_lock = threading.Lock()


def needs_live_image(spec: Any) -> bool:
    """Only a spec that leaves the version to the tables can be pinned; others make no read."""
    return spec.image.uri is None and spec.image.version is None


def live_image(sagemaker: Any, observed: ObservedEndpoint | None, owner_uid: str) -> str | None:
    """The container image the owned endpoint serves now, or None (no endpoint, not ours,
    a model without our tag, or anything missing)."""
    if observed is None or not observed.owned or not observed.config_name:
        return None
    key = (observed.config_name, owner_uid)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    image = _read(sagemaker, observed.config_name, owner_uid)
    if image is not None:
        with _cache_lock:
            if len(_cache) >= _MAX_CACHED:
                _cache.clear()
            _cache[key] = image
    return image


def _read(sagemaker: Any, config_name: str, owner_uid: str) -> str | None:
    config = sagemaker.describe_endpoint_config(config_name) or {}
    variants = config.get("ProductionVariants") or []
    if len(variants) != 1 or not variants[0].get("ModelName"):
        return None
    model = sagemaker.describe_model(variants[0]["ModelName"]) or {}
    arn = model.get("ModelArn")
    if not arn or not sagemaker.is_owned(arn, owner_uid):
        return None
    image = (model.get("PrimaryContainer") or {}).get("Image")
    return str(image) if image else None
