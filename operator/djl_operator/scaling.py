"""Autoscaling decisions (pure): what Application Auto Scaling should hold for a resource, and what to do.

``desired_scaling(spec, endpoint, uid)`` says what spec.autoscaling asks for;
``plan_scaling(desired, observed, applied)`` compares it with the scalable target as
Application Auto Scaling describes it and returns the calls to make. No I/O happens
here: :mod:`djl_operator.autoscaling_adapter` makes the calls.

Ownership: a scalable target is identified by its resource id, ``endpoint/<name>/variant/
AllTraffic``, and the operator only looks at targets on endpoints whose owner-uid tag it has
proven; scaling policies and scheduled actions it makes carry the owner's identity in their
names (``djl-operator-<owner id>-...``), and only those are changed or deleted.

Bounds: Application Auto Scaling changes a target's MinCapacity/MaxCapacity itself when a
scheduled action runs, so bounds that equal either the spec's or what one of the spec's
schedules sets are as specified; anything else is drift, repaired by registering the spec's
bounds again. A change of spec.autoscaling (its hash differs from ``applied``) registers the
spec's bounds at once.
"""

from __future__ import annotations

import datetime
import functools
import zoneinfo
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from djl_operator import naming
from djl_operator.api import DjlEndpointSpec
from djl_operator.errors import SpecError

SERVICE_NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
VARIANT = "AllTraffic"  # djl_operator.artifacts.requests.VARIANT_NAME (kept import-free: this module is pure)
INVOCATIONS = "SageMakerVariantInvocationsPerInstance"
CONCURRENCY = "SageMakerVariantConcurrentRequestsPerModelHighResolution"


def resource_id(endpoint: str, variant: str = VARIANT) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def name_prefix(uid: str) -> str:
    """What every policy and scheduled action name of this owner starts with."""
    return f"djl-operator-{naming.owner_id(uid)}-"


def policy_name(uid: str) -> str:
    return name_prefix(uid) + "target-tracking"


def action_name(uid: str, schedule: str) -> str:
    return name_prefix(uid) + "schedule-" + schedule


@functools.cache
def _zones() -> frozenset[str]:
    """The IANA time zone names this host knows (empty without a tz database: nothing is checked then)."""
    return frozenset(zoneinfo.available_timezones())


def check(spec: DjlEndpointSpec) -> None:
    """What the schema's pattern cannot say: an at() time that exists (no February 30), a time zone
    that exists (Application Auto Scaling takes "the canonical names of the IANA time zones")."""
    for i, schedule in enumerate(spec.autoscaling.schedules if spec.autoscaling else ()):
        if schedule.timezone and _zones() and schedule.timezone not in _zones():
            raise SpecError(
                f"spec.autoscaling.schedules[{i}].timezone", f"{schedule.timezone} is not an IANA time zone name"
            )
        if schedule.schedule.startswith("at("):
            try:
                datetime.datetime.fromisoformat(schedule.schedule[3:-1])
            except ValueError:
                raise SpecError(
                    f"spec.autoscaling.schedules[{i}].schedule", f"{schedule.schedule} names a time that does not exist"
                ) from None


@dataclass(frozen=True)
class ScheduledAction:
    name: str
    schedule: str
    min: int | None
    max: int | None
    timezone: str | None = None


@dataclass(frozen=True)
class DesiredScaling:
    resource_id: str
    min: int
    max: int
    policy_name: str
    metric: str
    target: float
    scale_in_cooldown: int
    scale_out_cooldown: int
    disable_scale_in: bool
    actions: tuple[ScheduledAction, ...]
    prefix: str  # names of ours start with it
    digest: str  # hash of spec.autoscaling: status.autoscaling.applied

    def policy_config(self) -> dict[str, Any]:
        return {
            "TargetValue": self.target,
            "PredefinedMetricSpecification": {"PredefinedMetricType": self.metric},
            "ScaleInCooldown": self.scale_in_cooldown,
            "ScaleOutCooldown": self.scale_out_cooldown,
            "DisableScaleIn": self.disable_scale_in,
        }


def desired_scaling(spec: DjlEndpointSpec, endpoint: str, uid: str) -> DesiredScaling | None:
    scaling = spec.autoscaling
    if scaling is None:
        return None
    if scaling.invocations_per_instance is not None:
        metric, target = INVOCATIONS, float(scaling.invocations_per_instance)
    else:
        metric, target = CONCURRENCY, float(scaling.concurrent_requests_per_model or 0)
    return DesiredScaling(
        resource_id=resource_id(endpoint),
        min=scaling.min_instances,
        max=scaling.max_instances,
        policy_name=policy_name(uid),
        metric=metric,
        target=target,
        scale_in_cooldown=scaling.scale_in_cooldown_seconds,
        scale_out_cooldown=scaling.scale_out_cooldown_seconds,
        disable_scale_in=scaling.disable_scale_in,
        actions=tuple(
            ScheduledAction(action_name(uid, s.name), s.schedule, s.min_instances, s.max_instances, s.timezone)
            for s in scaling.schedules
        ),
        prefix=name_prefix(uid),
        digest=naming.content_hash(scaling.model_dump(mode="json", by_alias=True)),
    )


@dataclass(frozen=True)
class ObservedScaling:
    """A registered scalable target as DescribeScalableTargets/ScalingPolicies/ScheduledActions report it."""

    min: int
    max: int
    # Every policy on the target: name -> TargetTrackingScalingPolicyConfiguration (None for other types).
    policies: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    actions: dict[str, ScheduledAction] = field(default_factory=dict)  # every scheduled action on the target
    last_activity: dict[str, Any] | None = None


class ScalingAction(Enum):
    REGISTER = "RegisterScalableTarget"
    PUT_POLICY = "PutScalingPolicy"
    PUT_SCHEDULED_ACTIONS = "PutScheduledAction"
    DELETE_SCHEDULED_ACTIONS = "DeleteScheduledAction"
    DEREGISTER = "DeregisterScalableTarget"


@dataclass
class ScalingPlan:
    actions: list[ScalingAction]
    put_actions: tuple[ScheduledAction, ...] = ()
    delete_actions: tuple[str, ...] = ()
    event: tuple[str, str, str] | None = None
    applied: str | None = None  # status.autoscaling.applied after the actions


def _policy_matches(desired: DesiredScaling, config: dict[str, Any] | None) -> bool:
    if config is None:
        return False
    metric = (config.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
    return (
        metric == desired.metric
        and float(config.get("TargetValue", -1)) == desired.target
        and config.get("ScaleInCooldown") == desired.scale_in_cooldown
        and config.get("ScaleOutCooldown") == desired.scale_out_cooldown
        and bool(config.get("DisableScaleIn")) == desired.disable_scale_in
        and config.get("CustomizedMetricSpecification") is None
    )


def bounds_as_specified(desired: DesiredScaling, minimum: int, maximum: int) -> bool:
    """The spec's bounds, or those one of its schedules sets: each bound it names, the other as
    it was, so one the spec or another schedule set (a max of 100 beside a schedule's min is drift)."""
    if (minimum, maximum) == (desired.min, desired.max):
        return True
    mins = {desired.min} | {a.min for a in desired.actions if a.min is not None}
    maxes = {desired.max} | {a.max for a in desired.actions if a.max is not None}
    if minimum not in mins or maximum not in maxes:
        return False
    return any((a.min is None or a.min == minimum) and (a.max is None or a.max == maximum) for a in desired.actions)


def plan_scaling(desired: DesiredScaling | None, observed: ObservedScaling | None, applied: str | None) -> ScalingPlan:
    """The Application Auto Scaling calls that make the target what the spec asks for.

    ``applied`` is the spec.autoscaling hash the status says was last applied: only a hint
    whether a difference is a spec change (Normal event) or drift (Warning event); every
    decision is made on what AWS reports.
    """
    if desired is None:
        if observed is None:
            return ScalingPlan([])
        return ScalingPlan(
            [ScalingAction.DEREGISTER],
            event=("Normal", "AutoscalingRemoved", "spec.autoscaling removed: scalable target deregistered"),
        )
    everything = [ScalingAction.REGISTER, ScalingAction.PUT_POLICY] + (
        [ScalingAction.PUT_SCHEDULED_ACTIONS] if desired.actions else []
    )
    bounds = f"{desired.min}..{desired.max} instances"
    if observed is None:
        return ScalingPlan(
            everything,
            put_actions=desired.actions,
            event=("Normal", "AutoscalingConfigured", f"registered {desired.resource_id} for autoscaling, {bounds}"),
            applied=desired.digest,
        )
    changed = applied != desired.digest
    drift: list[str] = []
    actions: list[ScalingAction] = []
    if (observed.min, observed.max) != (desired.min, desired.max) and (
        changed or not bounds_as_specified(desired, observed.min, observed.max)
    ):
        actions.append(ScalingAction.REGISTER)
        drift.append(f"bounds {observed.min}..{observed.max}")
    if not _policy_matches(desired, observed.policies.get(desired.policy_name)):
        actions.append(ScalingAction.PUT_POLICY)
        drift.append(f"policy {desired.policy_name}")
    ours = {n: a for n, a in observed.actions.items() if n.startswith(desired.prefix)}
    put = tuple(a for a in desired.actions if ours.get(a.name) != a)
    wanted = {a.name for a in desired.actions}
    delete = tuple(sorted(n for n in ours if n not in wanted))
    if put:
        actions.append(ScalingAction.PUT_SCHEDULED_ACTIONS)
        drift.append("scheduled actions " + ", ".join(a.name for a in put))
    if delete:
        actions.append(ScalingAction.DELETE_SCHEDULED_ACTIONS)
        drift.append("extra scheduled actions " + ", ".join(delete))
    event = None
    if changed and actions:
        event = ("Normal", "AutoscalingConfigured", f"applied spec.autoscaling to {desired.resource_id}, {bounds}")
    elif actions:
        event = ("Warning", "AutoscalingDriftRepaired", f"changed outside the operator, restored: {'; '.join(drift)}")
    return ScalingPlan(actions, put_actions=put, delete_actions=delete, event=event, applied=desired.digest)


def scaling_event(
    previous_desired: int | None, observed_desired: int | None, cause: str | None
) -> tuple[str, str, str] | None:
    """A Normal ScaledOut/ScaledIn event when the variant's DesiredInstanceCount moved since the last status."""
    if previous_desired is None or observed_desired is None or previous_desired == observed_desired:
        return None
    reason = "ScaledOut" if observed_desired > previous_desired else "ScaledIn"
    because = f" ({cause})" if cause else ""
    return ("Normal", reason, f"desired instances {previous_desired} -> {observed_desired}{because}")
