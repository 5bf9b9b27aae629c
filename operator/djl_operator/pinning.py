"""Image pinning: an operator upgrade never redeploys an endpoint by itself.

A spec without ``spec.image.version`` resolves to the newest image the SageMaker
SDK's tables list, and a newer operator ships newer tables. Once a resource is
deployed, the image it keeps is read back from AWS: the live endpoint's config,
its model (proven ours by the owner-uid tag), and that model's container image.
Status is never read for it (tenants can write status). ``live_image`` is the
one AWS read; ``reconcile`` passes its answer to ``desired_deployment``.
"""

from __future__ import annotations

from typing import Any

from djl_operator.planner import ObservedEndpoint


def live_image(sagemaker: Any, observed: ObservedEndpoint | None, owner_uid: str) -> str | None:
    """The container image the owned endpoint serves now, or None (no endpoint, not ours,
    a model without our tag, or anything missing)."""
    if observed is None or not observed.owned or not observed.config_name:
        return None
    config = sagemaker.describe_endpoint_config(observed.config_name) or {}
    variants = config.get("ProductionVariants") or []
    if len(variants) != 1 or not variants[0].get("ModelName"):
        return None
    model = sagemaker.describe_model(variants[0]["ModelName"]) or {}
    arn = model.get("ModelArn")
    if not arn or not sagemaker.is_owned(arn, owner_uid):
        return None
    image = (model.get("PrimaryContainer") or {}).get("Image")
    return str(image) if image else None
