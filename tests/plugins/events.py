"""The EventBridge rule -> SQS queue setup the README asks users to make, done with stock boto3
against the emulator: the queue, the rule on the default bus, the queue as its target, and the
queue policy that lets EventBridge send (for this rule only)."""

from __future__ import annotations

import json
from typing import Any

RULE = "djl-operator-endpoint-state"
PATTERN = {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Endpoint State Change"]}


def route_endpoint_events(emulator: Any, queue: str = "djl-operator-events", *, allow: bool = True) -> str:
    """Creates the queue and the rule targeting it; returns the queue URL (``--events-queue-url``)."""
    sqs, events = emulator.client("sqs"), emulator.client("events")
    url = str(sqs.create_queue(QueueName=queue)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = events.put_rule(Name=RULE, EventPattern=json.dumps(PATTERN))["RuleArn"]
    events.put_targets(Rule=RULE, Targets=[{"Id": "operator-queue", "Arn": arn}])
    if allow:
        statement = {
            "Sid": "EventBridgeSendsEndpointStateChanges",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule}},
        }
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    return url
