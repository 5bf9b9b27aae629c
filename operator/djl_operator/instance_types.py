"""SageMaker hosting instance types, read from botocore's service model."""

from __future__ import annotations

import functools


@functools.cache
def hosting_instance_types() -> list[str]:
    """The ``ProductionVariantInstanceType`` enum, in botocore's order."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.shape_for("ProductionVariantInstanceType")
    return list(getattr(shape, "enum", []))
