"""Application Auto Scaling for SageMaker endpoint variants (JSON 1.1, ``AnyScaleFrontendService.*``).

Modelled on the Application Auto Scaling API reference (API version 2016-02-06) and botocore's
``application-autoscaling`` model; requests are validated against that model first.

Scalable targets (RegisterScalableTarget, DescribeScalableTargets, DeregisterScalableTarget):

* only ``ServiceNamespace=sagemaker``, ``ResourceId=endpoint/<endpoint>/variant/<variant>`` and
  ``ScalableDimension=sagemaker:variant:DesiredInstanceCount`` are served; the variant must be
  live on an existing endpoint, otherwise ``ValidationException`` (AWS checks the resource with
  the target service; the message wording is ours);
* "When you register a new scalable target, you must specify values for the minimum and maximum
  capacity"; re-registering updates in place and "any parameters that you don't specify are not
  changed"; and if the resource is active, registering "changes the resource's current capacity
  to a value that is inside of this range"
  (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_RegisterScalableTarget.html);
  for variants both bounds "must be set to at least 1" and min <= max
  (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-policy.html);
* deregistering "deletes the scaling policies and the scheduled actions that are associated with
  it" (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_DeregisterScalableTarget.html);
* "If you delete an endpoint, Application Auto Scaling ... deregisters those models as scalable
  targets without notifying you"
  (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-delete-with-scaling.html): a target
  whose endpoint is Deleting or gone is dropped, with its policies and scheduled actions;
* a missing target, policy or scheduled action is ``ObjectNotFoundException``.
* while a variant is registered, SageMaker's UpdateEndpoint refuses a config that changes its
  instance type or drops it (``SageMaker.scalable_variants`` asks :meth:`AutoScaling.scalable_variants`;
  https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html).

Scaling policies: ``TargetTrackingScaling`` with ``PredefinedMetricType`` one of the variant
metrics SageMaker offers (``SageMakerVariantInvocationsPerInstance``,
``SageMakerVariantConcurrentRequestsPerModelHighResolution``) or a customized metric, and
``StepScaling``, are accepted; any other predefined metric, and ``PredictiveScaling`` (ECS only),
are ``ValidationException``. Target tracking returns the two CloudWatch alarms AWS creates
(``AlarmHigh``, and ``AlarmLow`` unless ``DisableScaleIn``). Cooldowns default to 300 s for SageMaker
endpoint variants (https://docs.aws.amazon.com/autoscaling/application/APIReference/
API_TargetTrackingScalingPolicyConfiguration.html).

Scheduled actions: ``Schedule`` is ``at(yyyy-mm-ddThh:mm:ss)``, ``rate(value unit)`` or
``cron(minutes hours day-of-month month day-of-week year)``; anything else is
``ValidationException``
(https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PutScheduledAction.html).
``at()`` and ``rate()`` actions are applied on the emulator's clock (``rate()`` counts periods from
``StartTime``, else from the action's creation; ``at()`` reads ``Timezone``, UTC by default; neither
runs after ``EndTime`` or while ``ScheduledScalingSuspended``): the target takes the action's
Min/MaxCapacity and, "if the current capacity is below the minimum capacity, Application Auto
Scaling scales out to the minimum capacity. If the current capacity is above the maximum capacity,
Application Auto Scaling scales in to the maximum capacity"
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/
aws-properties-applicationautoscaling-scalabletarget-scheduledaction.html). ``cron()`` actions are
validated and stored but **not applied**. A live count left outside the bounds (the endpoint was
busy when they changed) is moved inside them once the endpoint is ``InService`` again.

Simulation: :meth:`AutoScaling.set_invocation_rate` (the admin API) sets a variant's
invocations per minute. On every later request (:meth:`tick`) a target with a
``SageMakerVariantInvocationsPerInstance`` policy moves the variant's DesiredInstanceCount toward
``ceil(rate / TargetValue)`` within [min, max] through ``UpdateEndpointWeightsAndCapacities``, so
the endpoint passes through ``Updating`` and CurrentInstanceCount follows when it is back
``InService``. As that reference defines the cooldowns, a scale-out waits ``ScaleOutCooldown`` after the
last scale-out and a scale-in ``ScaleInCooldown`` after the last scale-in; a scale-in never happens with
``DisableScaleIn`` or
``DynamicScalingInSuspended`` (https://docs.aws.amazon.com/autoscaling/application/userguide/
target-tracking-scaling-policy-overview.html). Each change is a scaling activity (InProgress, then
Successful once the endpoint is InService). Not modelled: CloudWatch alarm evaluation periods (the
rate acts at once), step scaling, customized metrics, tags on scalable targets.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import math
import re
import threading
import time
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .errors import ApiError
from .sagemaker import SageMaker

TARGET_PREFIX = "AnyScaleFrontendService"
SERVICE = "application-autoscaling"  # botocore's name, and the call log's
NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS = "SageMakerVariantInvocationsPerInstance"
VARIANT_METRICS = frozenset({INVOCATIONS, "SageMakerVariantConcurrentRequestsPerModelHighResolution"})
DEFAULT_COOLDOWN = 300
DEFAULT_PAGE = 50
# The service-linked role Application Auto Scaling uses for SageMaker variants.
ROLE = (
    "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)
_RESOURCE_ID = re.compile(r"^endpoint/([^/]+)/variant/([^/]+)$")
_AT = re.compile(r"^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$")
_RATE = re.compile(r"^rate\(([1-9]\d*) (minute|minutes|hour|hours|day|days)\)$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?,/#LW-]+$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}

Clock = Callable[[], float]


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


def valid_schedule(schedule: str) -> bool:
    """``at(yyyy-mm-ddThh:mm:ss)``, ``rate(value unit)`` ("value is a positive integer and unit is
    minute | minutes | hour | hours | day | days") or ``cron()`` with "six fields separated by white
    spaces", as PutScheduledAction's ``Schedule`` documents. Of the six, day-of-month or day-of-week
    must be ``?`` (https://docs.aws.amazon.com/autoscaling/application/userguide/
    scheduled-scaling-using-cron-expressions.html)."""
    if _AT.match(schedule):
        try:
            datetime.datetime.fromisoformat(schedule[3:-1])
        except ValueError:
            return False  # at(2026-13-45T25:00:00)
        return True
    if _RATE.match(schedule):
        return True
    if schedule.startswith("cron(") and schedule.endswith(")"):
        fields = schedule[5:-1].split(" ")
        return len(fields) == 6 and all(_CRON_FIELD.match(f) for f in fields) and "?" in (fields[2], fields[4])
    return False


@dataclass
class _Target:
    resource_id: str
    endpoint: str
    variant: str
    min: int
    max: int
    arn: str
    creation_time: float
    suspended: dict[str, bool] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    scheduled: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_out: float | None = None  # when the last scale-out started
    last_in: float | None = None  # when the last scale-in started


class AutoScaling:
    """``handle(operation, params)`` -> response dict; raises :class:`ApiError` like AWS."""

    def __init__(self, sagemaker: SageMaker, clock: Clock = time.time) -> None:
        self._sagemaker = sagemaker
        self._clock = clock
        self._lock = threading.RLock()
        self._targets: dict[str, _Target] = {}
        self._rates: dict[str, float] = {}  # resource id -> invocations per minute (admin)
        self._activities: list[dict[str, Any]] = []  # newest first
        self._fired: dict[str, float] = {}  # scheduled action ARN -> the last due time it ran for
        self._ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "RegisterScalableTarget": self.register_scalable_target,
            "DescribeScalableTargets": self.describe_scalable_targets,
            "DeregisterScalableTarget": self.deregister_scalable_target,
            "PutScalingPolicy": self.put_scaling_policy,
            "DescribeScalingPolicies": self.describe_scaling_policies,
            "DeleteScalingPolicy": self.delete_scaling_policy,
            "PutScheduledAction": self.put_scheduled_action,
            "DescribeScheduledActions": self.describe_scheduled_actions,
            "DeleteScheduledAction": self.delete_scheduled_action,
            "DescribeScalingActivities": self.describe_scaling_activities,
        }

    @property
    def operations(self) -> frozenset[str]:
        return frozenset(self._ops)

    def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        op = errors.operation(self._ops, TARGET_PREFIX, operation)
        with self._lock:
            self.tick()
            return op(params)

    def reset(self) -> None:
        with self._lock:
            self._targets.clear()
            self._rates.clear()
            self._activities.clear()
            self._fired.clear()

    def _now(self) -> float:
        return round(self._clock(), 3)

    def _arn(self, kind: str, rest: str) -> str:
        return f"arn:aws:{kind}:{self._sagemaker.region}:{self._sagemaker.account_id}:{rest}"

    def scalable_variants(self, endpoint: str) -> frozenset[str]:
        """The variants of ``endpoint`` registered as scalable targets (SageMaker's UpdateEndpoint asks).

        Read without ``self._lock``: SageMaker calls this under its own lock, and :meth:`tick` takes the
        two the other way round (``list()`` of a dict is one step under the GIL)."""
        return frozenset(t.variant for t in list(self._targets.values()) if t.endpoint.lower() == endpoint.lower())

    # -- identity and lookups --

    def _key(self, p: dict[str, Any], must_exist: bool = True) -> _Target | None:
        """The target ``p`` names (namespace, resource id, dimension); ObjectNotFoundException if unregistered."""
        found = None
        if p["ServiceNamespace"] == NAMESPACE and p["ScalableDimension"] == DIMENSION:
            found = self._targets.get(p["ResourceId"])
        if found is None and must_exist:
            raise ApiError(
                "ObjectNotFoundException",
                f"No scalable target registered for service namespace: {p['ServiceNamespace']}, "
                f"resource ID: {p['ResourceId']}, scalable dimension: {p['ScalableDimension']}",
            )
        return found

    def _check_resource(self, p: dict[str, Any]) -> tuple[str, str]:
        if p["ServiceNamespace"] != NAMESPACE:
            raise validation(f"Unsupported service namespace {p['ServiceNamespace']}: the emulator serves sagemaker.")
        if p["ScalableDimension"] != DIMENSION:
            raise validation(
                f"Unsupported scalable dimension {p['ScalableDimension']} for service namespace sagemaker: "
                f"the emulator serves {DIMENSION}."
            )
        match = _RESOURCE_ID.match(p["ResourceId"])
        if match is None:
            raise validation(
                f"Unsupported resource ID {p['ResourceId']}: expected endpoint/<endpoint>/variant/<variant>."
            )
        endpoint, variant = match.groups()
        state = self._sagemaker.variant_state(endpoint, variant)
        if state is None or state[0] == "Deleting":
            raise validation(f"The resource ID {p['ResourceId']} does not exist: no such endpoint variant.")
        return endpoint, variant

    # -- scalable targets --

    def register_scalable_target(self, p: dict[str, Any]) -> dict[str, Any]:
        endpoint, variant = self._check_resource(p)
        target = self._targets.get(p["ResourceId"])
        lo = p.get("MinCapacity", target.min if target else None)
        hi = p.get("MaxCapacity", target.max if target else None)
        if lo is None or hi is None:
            raise validation("MinCapacity and MaxCapacity are required to register a new scalable target.")
        if lo < 1 or hi < 1:
            raise validation("MinCapacity and MaxCapacity must be at least 1 for a SageMaker variant.")
        if lo > hi:
            raise validation(f"Maximum capacity ({hi}) cannot be less than minimum capacity ({lo}).")
        if target is None:
            target = _Target(
                p["ResourceId"], endpoint, variant, lo, hi,
                self._arn("application-autoscaling", f"scalable-target/{uuid.uuid4().hex[:32]}"), self._now(),
            )  # fmt: skip
            self._targets[p["ResourceId"]] = target
        target.min, target.max = lo, hi
        if p.get("SuspendedState") is not None:
            target.suspended.update(p["SuspendedState"])
        self._move(target, max(lo, min(hi, self._desired(target))), "registered capacity bounds")
        return {"ScalableTargetARN": target.arn}

    def describe_scalable_targets(self, p: dict[str, Any]) -> dict[str, Any]:
        items = [t for t in self._targets.values() if self._matches(t, p, p.get("ResourceIds"))]
        page, token = _page(items, p)
        return {"ScalableTargets": [self._target_json(t) for t in page], **token}

    def _target_json(self, t: _Target) -> dict[str, Any]:
        return {
            "ServiceNamespace": NAMESPACE,
            "ResourceId": t.resource_id,
            "ScalableDimension": DIMENSION,
            "MinCapacity": t.min,
            "MaxCapacity": t.max,
            "RoleARN": f"arn:aws:iam::{self._sagemaker.account_id}:{ROLE}",
            "CreationTime": t.creation_time,
            "SuspendedState": {
                k: bool(t.suspended.get(k))
                for k in ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")
            },
            "ScalableTargetARN": t.arn,
        }

    def deregister_scalable_target(self, p: dict[str, Any]) -> dict[str, Any]:
        target = self._key(p)
        assert target is not None
        del self._targets[target.resource_id]
        return {}

    @staticmethod
    def _matches(t: _Target, p: dict[str, Any], resource_ids: list[str] | None) -> bool:
        if p["ServiceNamespace"] != NAMESPACE:
            return False
        if p.get("ScalableDimension") not in (None, DIMENSION):
            return False
        return not resource_ids or t.resource_id in resource_ids

    # -- scaling policies --

    def put_scaling_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        target = self._key(p)
        assert target is not None
        old = target.policies.get(p["PolicyName"])
        # "This parameter is required if you are creating a scaling policy"; an update keeps the type.
        kind = p.get("PolicyType") or (old["PolicyType"] if old else None)
        if kind is None:
            raise validation("PolicyType is required to create a scaling policy.")
        policy: dict[str, Any] = {
            "PolicyName": p["PolicyName"],
            "ServiceNamespace": NAMESPACE,
            "ResourceId": target.resource_id,
            "ScalableDimension": DIMENSION,
            "PolicyType": kind,
        }
        if kind == "TargetTrackingScaling":
            config = p.get("TargetTrackingScalingPolicyConfiguration") or (
                old.get("TargetTrackingScalingPolicyConfiguration") if old else None
            )
            if config is None:
                raise validation("TargetTrackingScalingPolicyConfiguration is required for TargetTrackingScaling.")
            predefined = config.get("PredefinedMetricSpecification")
            if predefined is None and config.get("CustomizedMetricSpecification") is None:
                raise validation("Either PredefinedMetricSpecification or CustomizedMetricSpecification is required.")
            if predefined is not None and predefined["PredefinedMetricType"] not in VARIANT_METRICS:
                raise validation(
                    f"Unsupported metric type {predefined['PredefinedMetricType']} for scalable dimension {DIMENSION}."
                )
            policy["TargetTrackingScalingPolicyConfiguration"] = {
                "ScaleOutCooldown": DEFAULT_COOLDOWN,
                "ScaleInCooldown": DEFAULT_COOLDOWN,
                "DisableScaleIn": False,
                **config,
            }
        elif kind == "StepScaling":
            step = p.get("StepScalingPolicyConfiguration") or (
                old.get("StepScalingPolicyConfiguration") if old else None
            )
            if step is None:
                raise validation("StepScalingPolicyConfiguration is required for StepScaling.")
            policy["StepScalingPolicyConfiguration"] = step
        else:
            raise validation(f"Unsupported policy type {kind} for service namespace sagemaker.")
        policy_id = old["PolicyARN"].split(":")[6] if old else str(uuid.uuid4())
        policy["PolicyARN"] = self._arn(
            "autoscaling",
            f"scalingPolicy:{policy_id}:resource/sagemaker/{target.resource_id}:policyName/{p['PolicyName']}",
        )
        alarms = []
        if kind == "TargetTrackingScaling":
            sides = ["AlarmHigh"] if policy["TargetTrackingScalingPolicyConfiguration"]["DisableScaleIn"] else [
                "AlarmHigh", "AlarmLow"
            ]  # fmt: skip
            for side in sides:
                name = f"TargetTracking-{target.resource_id}-{side}-{uuid.uuid5(uuid.NAMESPACE_URL, policy_id + side)}"
                alarms.append({"AlarmName": name, "AlarmARN": self._arn("cloudwatch", f"alarm:{name}")})
        policy["Alarms"] = alarms
        policy["CreationTime"] = old["CreationTime"] if old else self._now()
        target.policies[p["PolicyName"]] = policy
        return {"PolicyARN": policy["PolicyARN"], "Alarms": alarms}

    def describe_scaling_policies(self, p: dict[str, Any]) -> dict[str, Any]:
        names = p.get("PolicyNames")
        items = [
            pol
            for t in self._targets.values()
            if self._matches(t, p, [p["ResourceId"]] if p.get("ResourceId") else None)
            for pol in t.policies.values()
            if not names or pol["PolicyName"] in names
        ]
        page, token = _page(items, p)
        return {"ScalingPolicies": page, **token}

    def delete_scaling_policy(self, p: dict[str, Any]) -> dict[str, Any]:
        target = self._key(p, must_exist=False)
        if target is None or p["PolicyName"] not in target.policies:
            raise ApiError(
                "ObjectNotFoundException",
                f"No scaling policy found for service namespace: {p['ServiceNamespace']}, resource ID: "
                f"{p['ResourceId']}, scalable dimension: {p['ScalableDimension']}, policy name: {p['PolicyName']}",
            )
        del target.policies[p["PolicyName"]]
        return {}

    # -- scheduled actions --

    def put_scheduled_action(self, p: dict[str, Any]) -> dict[str, Any]:
        target = self._key(p)
        assert target is not None
        old = target.scheduled.get(p["ScheduledActionName"])
        schedule = p.get("Schedule", old["Schedule"] if old else None)
        if schedule is None:
            raise validation("Schedule is required to create a scheduled action.")
        if not valid_schedule(schedule):
            raise validation(f"Schedule {schedule!r} is not a valid at(), rate() or cron() expression.")
        # "Valid values are the canonical names of the IANA time zones, such as Etc/GMT+9 or Pacific/Tahiti"
        # (API_PutScheduledAction, Timezone): anything else is refused, never stored to never run.
        zone = p.get("Timezone")
        if zone is not None and zone not in _iana_zones():
            raise validation(f"Timezone {zone!r} is not a canonical IANA time zone name.")
        # A copy: a request refused below leaves the stored action as it was.
        action = (
            dict(old)
            if old
            else {
                "ScheduledActionName": p["ScheduledActionName"],
                "ScheduledActionARN": self._arn(
                    "autoscaling",
                    f"scheduledAction:{uuid.uuid4()}:resource/sagemaker/{target.resource_id}"
                    f":scheduledActionName/{p['ScheduledActionName']}",
                ),
                "ServiceNamespace": NAMESPACE,
                "ResourceId": target.resource_id,
                "ScalableDimension": DIMENSION,
                "CreationTime": self._now(),
            }
        )
        action["Schedule"] = schedule
        for member in ("Timezone", "StartTime", "EndTime", "ScalableTargetAction"):
            if p.get(member) is not None:
                action[member] = p[member]
        bounds = action.get("ScalableTargetAction") or {}
        lo, hi = bounds.get("MinCapacity"), bounds.get("MaxCapacity")
        if lo is not None and hi is not None and lo > hi:
            raise validation("ScalableTargetAction's MaxCapacity cannot be less than its MinCapacity.")
        target.scheduled[p["ScheduledActionName"]] = action
        self._fired.pop(action["ScheduledActionARN"], None)  # a changed schedule starts afresh
        return {}

    def describe_scheduled_actions(self, p: dict[str, Any]) -> dict[str, Any]:
        names = p.get("ScheduledActionNames")
        items = [
            a
            for t in self._targets.values()
            if self._matches(t, p, [p["ResourceId"]] if p.get("ResourceId") else None)
            for a in t.scheduled.values()
            if not names or a["ScheduledActionName"] in names
        ]
        page, token = _page(items, p)
        return {"ScheduledActions": page, **token}

    def delete_scheduled_action(self, p: dict[str, Any]) -> dict[str, Any]:
        target = self._key(p, must_exist=False)
        if target is None or p["ScheduledActionName"] not in target.scheduled:
            raise ApiError(
                "ObjectNotFoundException",
                f"No scheduled action found for service namespace: {p['ServiceNamespace']}, resource ID: "
                f"{p['ResourceId']}, scalable dimension: {p['ScalableDimension']}, scheduled action name: "
                f"{p['ScheduledActionName']}",
            )
        del target.scheduled[p["ScheduledActionName"]]
        return {}

    # -- activities --

    def describe_scaling_activities(self, p: dict[str, Any]) -> dict[str, Any]:
        items = [
            a
            for a in self._activities
            if p["ServiceNamespace"] == NAMESPACE
            and p.get("ScalableDimension") in (None, DIMENSION)
            and p.get("ResourceId") in (None, a["ResourceId"])
        ]
        page, token = _page(items, p)
        return {"ScalingActivities": [dict(a) for a in page], **token}

    # -- simulation --

    def set_invocation_rate(self, endpoint: str, variant: str, per_minute: Any) -> None:
        if not isinstance(per_minute, (int, float)) or isinstance(per_minute, bool) or per_minute < 0:
            raise ValueError("'per_minute' must be a number >= 0")
        with self._lock:
            self._rates[f"endpoint/{endpoint}/variant/{variant}"] = float(per_minute)
            self.tick()

    def tick(self) -> None:
        """Drop targets whose endpoint went away, settle activities, apply target tracking."""
        with self._lock:
            now = self._now()
            for target in list(self._targets.values()):
                state = self._sagemaker.variant_state(target.endpoint, target.variant)
                if state is None or state[0] == "Deleting":
                    del self._targets[target.resource_id]
                    continue
                status, desired, current = state
                settled = status == "InService" and current == desired
                for activity in self._activities:
                    mine = activity["ResourceId"] == target.resource_id and activity["StatusCode"] == "InProgress"
                    if mine and settled:
                        activity.update(StatusCode="Successful", EndTime=now)
                self._scheduled(target, now)
                inside = max(target.min, min(target.max, desired))
                if inside != desired:
                    self._move(target, inside, "capacity outside the scalable target's minimum and maximum")
                    continue
                self._track(target, now, desired)

    def _scheduled(self, target: _Target, now: float) -> None:
        """Run the ``at()``/``rate()`` actions whose time has come (each due time once)."""
        if target.suspended.get("ScheduledScalingSuspended"):
            return
        for action in target.scheduled.values():
            due = _last_due(action, now)
            if due is None or self._fired.get(action["ScheduledActionARN"], -math.inf) >= due:
                continue
            self._fired[action["ScheduledActionARN"]] = due
            bounds = action.get("ScalableTargetAction") or {}
            target.min = bounds.get("MinCapacity", target.min)
            target.max = max(target.min, bounds.get("MaxCapacity", target.max))

    def _desired(self, target: _Target) -> int:
        state = self._sagemaker.variant_state(target.endpoint, target.variant)
        return state[1] if state else target.min

    def _track(self, target: _Target, now: float, desired: int) -> None:
        rate = self._rates.get(target.resource_id)
        policy = next(
            (
                pol["TargetTrackingScalingPolicyConfiguration"]
                for pol in target.policies.values()
                if pol["PolicyType"] == "TargetTrackingScaling"
                and (pol["TargetTrackingScalingPolicyConfiguration"].get("PredefinedMetricSpecification") or {}).get(
                    "PredefinedMetricType"
                )
                == INVOCATIONS
            ),
            None,
        )
        if rate is None or policy is None:
            return
        want = max(target.min, min(target.max, math.ceil(rate / policy["TargetValue"]) if rate else target.min))
        if want > desired:
            if target.suspended.get("DynamicScalingOutSuspended"):
                return
            if target.last_out is not None and now - target.last_out < policy["ScaleOutCooldown"]:
                return
            if self._move(target, want, f"monitor alarm AlarmHigh: {rate:g} invocations/minute"):
                target.last_out = now
        elif want < desired:
            if policy["DisableScaleIn"] or target.suspended.get("DynamicScalingInSuspended"):
                return
            if target.last_in is not None and now - target.last_in < policy["ScaleInCooldown"]:
                return
            if self._move(target, want, f"monitor alarm AlarmLow: {rate:g} invocations/minute"):
                target.last_in = now

    def _move(self, target: _Target, count: int, cause: str) -> bool:
        """Set the variant's DesiredInstanceCount (endpoint -> Updating); record the activity."""
        state = self._sagemaker.variant_state(target.endpoint, target.variant)
        if state is None or state[1] == count:
            return False
        if state[0] != "InService":
            return False  # not active: registration leaves capacity alone; scaling waits
        try:
            self._sagemaker.handle(
                "UpdateEndpointWeightsAndCapacities",
                {
                    "EndpointName": target.endpoint,
                    "DesiredWeightsAndCapacities": [{"VariantName": target.variant, "DesiredInstanceCount": count}],
                },
            )
        except ApiError:
            return False  # someone else's update started meanwhile: try again on a later tick
        now = self._now()
        self._activities.insert(
            0,
            {
                "ActivityId": str(uuid.uuid4()),
                "ServiceNamespace": NAMESPACE,
                "ResourceId": target.resource_id,
                "ScalableDimension": DIMENSION,
                "Description": f"Setting desired instance count to {count}.",
                "Cause": cause,
                "StartTime": now,
                "StatusCode": "InProgress",
                "StatusMessage": f"Successfully set desired instance count to {count}. Change may take a few minutes.",
            },
        )
        return True


@functools.cache
def _iana_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _last_due(action: dict[str, Any], now: float) -> float | None:
    """The latest time at or before ``now`` an ``at()``/``rate()`` action was due, within its window."""
    start, end = action.get("StartTime"), action.get("EndTime")
    if end is not None and now > float(end):
        return None
    schedule = action["Schedule"]
    if schedule.startswith("at("):
        zone: datetime.tzinfo = datetime.UTC
        if action.get("Timezone"):
            try:
                zone = zoneinfo.ZoneInfo(action["Timezone"])
            except (ValueError, zoneinfo.ZoneInfoNotFoundError):
                return None
        at = datetime.datetime.fromisoformat(schedule[3:-1]).replace(tzinfo=zone).timestamp()
        # Only a time still ahead when the action was put runs (the reference says nothing of past ones).
        if at < float(action["CreationTime"]) or (start is not None and at < float(start)):
            return None
        return at if at <= now else None
    rate = _RATE.match(schedule)
    if rate is None:
        return None  # cron(): not applied
    period = int(rate.group(1)) * _UNIT_SECONDS[rate.group(2).rstrip("s")]
    origin = float(start) if start is not None else float(action["CreationTime"])
    periods = math.floor((now - origin) / period)
    return origin + periods * period if periods >= 1 else None


def _page(items: list[Any], p: dict[str, Any]) -> tuple[list[Any], dict[str, str]]:
    """A page of ``MaxResults`` (default 50) from an opaque ``NextToken``; no token on the last page."""
    start = 0
    if p.get("NextToken"):
        try:
            start = int(base64.urlsafe_b64decode(p["NextToken"].encode()).decode())
        except (ValueError, binascii.Error) as exc:
            raise validation("Invalid NextToken.") from exc
    size = p.get("MaxResults") or DEFAULT_PAGE
    page = items[start : start + size]
    if start + size < len(items):
        return page, {"NextToken": base64.urlsafe_b64encode(str(start + size).encode()).decode()}
    return page, {}
