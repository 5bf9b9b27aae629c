"""Find / create-or-update / delete a scalable target of an owned endpoint (Application Auto Scaling).

Callers only pass endpoints whose owner-uid tag they have proven (the emulator, like
RegisterScalableTarget before the Tags member, keeps no tags on scalable targets): the target
belongs to the endpoint, and AWS drops it with the endpoint. Registering and the Put* calls
create or update in place, so every call here can be repeated after a crash; "not found" on a
delete counts as done.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.exceptions import ClientError

from djl_operator.aws_errors import ErrorKind, classify
from djl_operator.scaling import DIMENSION, SERVICE_NAMESPACE, DesiredScaling, ObservedScaling, ScheduledAction


class AutoScalingAdapter:
    def __init__(self, client: Any) -> None:
        self.client = client

    def _key(self, resource_id: str) -> dict[str, str]:
        return {"ServiceNamespace": SERVICE_NAMESPACE, "ResourceId": resource_id, "ScalableDimension": DIMENSION}

    def find(self, resource_id: str) -> ObservedScaling | None:
        """The registered target with its policies, scheduled actions and last activity; None if unregistered."""
        found = self.client.describe_scalable_targets(
            ServiceNamespace=SERVICE_NAMESPACE, ResourceIds=[resource_id], ScalableDimension=DIMENSION
        ).get("ScalableTargets", [])
        if not found:
            return None
        target = found[0]
        policies: dict[str, dict[str, Any] | None] = {}
        for page in self._pages(self.client.describe_scaling_policies, "ScalingPolicies", **self._key(resource_id)):
            policies[page["PolicyName"]] = page.get("TargetTrackingScalingPolicyConfiguration")
        actions: dict[str, ScheduledAction] = {}
        for item in self._pages(self.client.describe_scheduled_actions, "ScheduledActions", **self._key(resource_id)):
            bounds = item.get("ScalableTargetAction") or {}
            actions[item["ScheduledActionName"]] = ScheduledAction(
                item["ScheduledActionName"],
                item["Schedule"],
                bounds.get("MinCapacity"),
                bounds.get("MaxCapacity"),
                item.get("Timezone"),
            )
        activities = self.client.describe_scaling_activities(**self._key(resource_id), MaxResults=1)
        latest = (activities.get("ScalingActivities") or [None])[0]
        return ObservedScaling(
            min=int(target["MinCapacity"]),
            max=int(target["MaxCapacity"]),
            policies=policies,
            actions=actions,
            last_activity=latest,
        )

    def register(self, desired: DesiredScaling) -> None:
        self.client.register_scalable_target(
            **self._key(desired.resource_id), MinCapacity=desired.min, MaxCapacity=desired.max
        )

    def put_policy(self, desired: DesiredScaling) -> None:
        self.client.put_scaling_policy(
            **self._key(desired.resource_id),
            PolicyName=desired.policy_name,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration=desired.policy_config(),
        )

    def put_scheduled_action(self, resource_id: str, action: ScheduledAction) -> None:
        bounds = {k: v for k, v in (("MinCapacity", action.min), ("MaxCapacity", action.max)) if v is not None}
        self.client.put_scheduled_action(
            **self._key(resource_id),
            ScheduledActionName=action.name,
            Schedule=action.schedule,
            ScalableTargetAction=bounds,
            **({"Timezone": action.timezone} if action.timezone else {}),
        )

    def delete_scheduled_action(self, resource_id: str, name: str) -> None:
        self._gone(self.client.delete_scheduled_action, **self._key(resource_id), ScheduledActionName=name)

    def deregister(self, resource_id: str) -> None:
        """Deregistering deletes the target's policies and scheduled actions with it (AWS does)."""
        self._gone(self.client.deregister_scalable_target, **self._key(resource_id))

    @staticmethod
    def _gone(call: Any, **kwargs: Any) -> None:
        try:
            call(**kwargs)
        except ClientError as exc:
            if classify(exc) is not ErrorKind.NOT_FOUND:
                raise

    @staticmethod
    def _pages(call: Any, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = call(**kwargs, **({"NextToken": token} if token else {}))
            items += page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return items


def activity_status(activity: dict[str, Any] | None) -> dict[str, Any] | None:
    """status.autoscaling.lastActivity from a DescribeScalingActivities entry."""
    if activity is None:
        return None
    start = activity.get("StartTime")
    if isinstance(start, dt.datetime):
        start = start.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {
        "description": activity.get("Description"),
        "cause": activity.get("Cause"),
        "statusCode": activity.get("StatusCode"),
        "startTime": start,
    }
