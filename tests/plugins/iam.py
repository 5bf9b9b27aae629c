"""The operator's IAM policy (manifests/iam/operator-policy.json) and the IAM actions each API call needs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

POLICY_PATH = Path(__file__).resolve().parents[2] / "manifests" / "iam" / "operator-policy.json"

# S3 API operations -> the IAM action that authorizes each (the names differ).
S3_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "HeadBucket": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    # spec.model.snapshot: multipart uploads are PutObject to IAM; listing and aborting have their own.
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}

# SQS operations of the events queue -> their IAM actions (DeleteMessageBatch needs sqs:DeleteMessage).
SQS_ACTIONS = {
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessage": "sqs:DeleteMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
}

# Actions AWS authorizes on the caller's behalf during a call, which no call log shows:
# passing the execution role, tagging on create, and KMS use when spec.aws.kmsKeyId is set
# (S3 generates the SSE-KMS data key; SageMaker grants itself the endpoint volume key).
IMPLIED = {
    ("sagemaker", "CreateModel"): {"iam:PassRole", "sagemaker:AddTags"},
    ("sagemaker", "CreateEndpointConfig"): {"sagemaker:AddTags"},
    ("sagemaker", "CreateEndpoint"): {"sagemaker:AddTags", "kms:CreateGrant", "kms:DescribeKey"},
    ("sagemaker", "UpdateEndpoint"): {"kms:CreateGrant", "kms:DescribeKey"},
    ("s3", "PutObject"): {"kms:GenerateDataKey"},
    # Application Auto Scaling checks the caller's rights on SageMaker and CloudWatch, and creates its
    # service-linked role on the first registration ("Permissions required for API actions on target
    # services and CloudWatch", Application Auto Scaling User Guide).
    ("application-autoscaling", "RegisterScalableTarget"): {
        "iam:CreateServiceLinkedRole",
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:UpdateEndpointWeightsAndCapacities",
    },
    ("application-autoscaling", "PutScalingPolicy"): {"cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"},
    ("application-autoscaling", "DeregisterScalableTarget"): {"cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"},
    # "the requester must have permission to the kms:Decrypt and kms:GenerateDataKey actions" for a
    # multipart upload under SSE-KMS (S3 User Guide, Multipart upload API and permissions).
    ("s3", "CreateMultipartUpload"): {"kms:GenerateDataKey", "kms:Decrypt"},
    ("s3", "UploadPart"): {"kms:GenerateDataKey", "kms:Decrypt"},
    ("s3", "CompleteMultipartUpload"): {"kms:Decrypt"},
}


def iam_actions(service: str, operation: str) -> set[str]:
    """Every IAM action one API call needs."""
    if service in ("sagemaker", "sagemaker-runtime"):
        direct = f"sagemaker:{operation}"
    elif service == "application-autoscaling":
        direct = f"application-autoscaling:{operation}"
    elif service == "resourcegroupstaggingapi" and operation == "GetResources":
        direct = "tag:GetResources"
    elif service == "s3":
        if operation not in S3_ACTIONS:
            raise AssertionError(f"the operator called s3:{operation}; add its IAM action to S3_ACTIONS")
        direct = S3_ACTIONS[operation]
    elif service == "sqs":
        if operation not in SQS_ACTIONS:
            raise AssertionError(f"the operator called sqs:{operation}; add its IAM action to SQS_ACTIONS")
        direct = SQS_ACTIONS[operation]
    else:
        raise AssertionError(f"the operator called {service}:{operation}, a service the policy does not cover")
    return {direct} | IMPLIED.get((service, operation), set())


def needed(calls: Iterable[tuple[str, str]]) -> set[str]:
    return set().union(*(iam_actions(service, operation) for service, operation in calls))


def policy_statements() -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = json.loads(POLICY_PATH.read_text())["Statement"]
    return statements


def listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def policy_actions() -> set[str]:
    return {a for s in policy_statements() if s["Effect"] == "Allow" for a in listed(s["Action"])}
