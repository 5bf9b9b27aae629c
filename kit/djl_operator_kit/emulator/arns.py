"""SageMaker ARNs as AWS prints them: the resource name is lower-cased."""

from __future__ import annotations

# Our kind -> the ARN resource-type segment AWS uses.
RESOURCE_TYPES = {
    "model": "model",
    "endpoint-config": "endpoint-config",
    "endpoint": "endpoint",
}


def sagemaker_arn(region: str, account_id: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account_id}:{RESOURCE_TYPES[kind]}/{name.lower()}"


def parse_sagemaker_arn(arn: str) -> tuple[str, str] | None:
    """``(kind, lower-cased name)`` for a SageMaker hosting ARN, else None."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sagemaker" or "/" not in parts[5]:
        return None
    kind, _, name = parts[5].partition("/")
    if kind not in RESOURCE_TYPES.values() or not name:
        return None
    return kind, name
