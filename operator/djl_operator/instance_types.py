"""SageMaker hosting instance types, read from botocore's service model."""

from __future__ import annotations

import functools
import re


@functools.cache
def hosting_instance_types() -> list[str]:
    """The ``ProductionVariantInstanceType`` enum, in botocore's order."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.shape_for("ProductionVariantInstanceType")
    return list(getattr(shape, "enum", []))


# NVIDIA GPUs per hosting instance type, from the EC2 accelerated-computing instance
# specifications (docs.aws.amazon.com/ec2/latest/instancetypes/ac.html, "GPUs" column; the
# ml. types are the same hardware). Sizes not listed in a family have the family's default.
# Families left out (Inferentia, Trainium, Gaudi, and GPU families newer than this table)
# are not checked: gpu_count answers None for them.
_GPU_FAMILIES: dict[str, tuple[int, dict[str, int]]] = {
    # family: (GPUs of the sizes not listed, {size: GPUs})
    "ml.p2": (1, {"8xlarge": 8, "16xlarge": 16}),
    "ml.p3": (1, {"8xlarge": 4, "16xlarge": 8}),
    "ml.g4dn": (1, {"12xlarge": 4}),
    "ml.g5": (1, {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    "ml.g6": (1, {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    "ml.g6e": (1, {"12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    "ml.p4d": (8, {}),
    "ml.p4de": (8, {}),
    "ml.p5": (8, {"4xlarge": 1}),
    "ml.p5e": (8, {}),
    "ml.p5en": (8, {}),
    "ml.p6-b200": (8, {}),
    "ml.p6-b300": (8, {}),
    "ml.p6e-gb200": (4, {}),
}
# General purpose, compute and memory optimised families (ml.c5, ml.m7i, ml.t2...): no accelerator.
_CPU_FAMILY = re.compile(r"ml\.[cmrt][0-9][a-z0-9]*")


def gpu_count(instance_type: str) -> int | None:
    """NVIDIA GPUs of a hosting instance type: 0 for CPU types, None where this table does not know."""
    family, _, size = instance_type.rpartition(".")
    if family in _GPU_FAMILIES:
        default, sizes = _GPU_FAMILIES[family]
        return sizes.get(size, default)
    if _CPU_FAMILY.fullmatch(family):
        return 0
    return None
