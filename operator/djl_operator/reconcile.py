"""The level-triggered reconcile: read the world, plan, act, report.

``reconcile()`` and ``finalize()`` are plain synchronous functions over a
parsed resource and a :class:`Context`; they never raise for expected
conditions. They return an :class:`Outcome` holding the status to write, the
event to post and how to continue (done, retry after N seconds, stalled), and
the kopf handlers translate that. Create, update, resume and the resync timer
all call ``reconcile()``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from djl_operator import api, conditions, model_data, naming, rollout, scaling, snapshot
from djl_operator.api import DjlEndpointResource, DjlEndpointStatus, Phase
from djl_operator.artifact_store import ArtifactStore, folder_of_container
from djl_operator.artifacts import requests
from djl_operator.autoscaling_adapter import AutoScalingAdapter, activity_status
from djl_operator.aws_clients import AwsClients, RegionClients
from djl_operator.aws_errors import ErrorKind, classify, error_code, error_message
from djl_operator.conditions import READY, RECONCILING, STALLED, ConditionState, Reason
from djl_operator.desired import DesiredDeployment, desired_deployment, keep_live_image, owned_scope
from djl_operator.errors import ArtifactStoreError, OwnershipConflict, SpecError
from djl_operator.planner import (
    Action,
    ArtifactFolder,
    Collection,
    Next,
    ObservedEndpoint,
    ObservedModel,
    OwnedWorld,
    Plan,
    plan,
    plan_collection,
    plan_delete,
    plan_variant_update,
)
from djl_operator.sagemaker_adapter import OwnershipProofs, SageMakerAdapter
from djl_operator.settings import Settings

log = logging.getLogger(__name__)


__all__ = ["Context", "DeletionTarget", "Next", "Outcome", "accept", "finalize", "reconcile"]


@dataclass
class Outcome:
    status: dict[str, Any]
    next: Next
    delay: float = 0.0  # Next.POLL and Next.RETRY: seconds until the next look
    message: str = ""
    events: list[tuple[str, str, str]] = field(default_factory=list)
    error: BaseException | None = None
    # What this reconcile saw of the endpoint before acting, (EndpointStatus, LastModifiedTime), (None, None)
    # for no endpoint of ours; None when it did not look. The batched status read compares against it.
    seen: tuple[str | None, Any] | None = None
    # It created, updated or deleted an endpoint (reconcile and finalize look again at once).
    acted_on_endpoint: bool = False


@dataclass
class Context:
    """Everything reconcile needs from outside: built once at start-up (kopf's memo)."""

    settings: Settings
    clients: AwsClients
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    # Proofs of ownership (owner-uid tags seen on AWS), never taken from status.
    proofs: OwnershipProofs = field(default_factory=OwnershipProofs)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)
    # uids whose earlier endpoints were still going away at the last look, and uids this process has seen.
    _cleanup_pending: set[str] = field(default_factory=set)
    _seen: set[str] = field(default_factory=set)
    # spec.model.snapshot copies in flight (their own thread pool); built from settings when not given.
    snapshots: snapshot.Snapshots | None = None

    def __post_init__(self) -> None:
        if self.snapshots is None:
            self.snapshots = snapshot.Snapshots(
                workers=self.settings.snapshot_workers, part_bytes=self.settings.snapshot_part_bytes
            )

    @property
    def copies(self) -> snapshot.Snapshots:
        assert self.snapshots is not None
        return self.snapshots

    def lock_for(self, uid: str) -> threading.Lock:
        """Handlers and the timer of one resource never reconcile at the same time."""
        with self._locks_guard:
            return self._locks.setdefault(uid, threading.Lock())

    def cleanup_pending(self, uid: str, generation: int) -> bool:
        """Whether earlier endpoints may still exist; after a restart, any resource an edit may have renamed."""
        with self._locks_guard:
            first_look = uid not in self._seen
            self._seen.add(uid)
            return uid in self._cleanup_pending or (first_look and generation > 1)

    def set_cleanup_pending(self, uid: str, pending: bool) -> None:
        with self._locks_guard:
            if pending:
                self._cleanup_pending.add(uid)
            else:
                self._cleanup_pending.discard(uid)

    def forget(self, uid: str) -> None:
        with self._locks_guard:
            self._locks.pop(uid, None)
            self._cleanup_pending.discard(uid)
            self._seen.discard(uid)
        self.proofs.forget_owner(uid)
        self.copies.forget(uid)


def parse_timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _timestamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class _Status:
    """Builds the status patch from the previous status, so unset fields are cleared explicitly."""

    def __init__(self, previous: DjlEndpointStatus, generation: int, now: dt.datetime) -> None:
        self.previous = previous
        self.generation = generation
        self.now = now
        self.fields: dict[str, Any] = {
            "observedGeneration": generation,
            "lastSyncTime": _timestamp(now),
        }

    def conditions(self, desired: dict[str, ConditionState]) -> None:
        existing = [c.model_dump(by_alias=True, exclude_none=True) for c in self.previous.conditions]
        self.fields["conditions"] = conditions.merge(
            existing, desired, now=_timestamp(self.now), generation=self.generation
        )

    def set(self, **values: Any) -> None:
        self.fields.update(values)

    def build(self) -> dict[str, Any]:
        return self.fields


def _failure(kind: str, reason: Reason, message: str) -> dict[str, ConditionState]:
    if kind == "stalled":
        return {
            READY: ConditionState(False, reason, message),
            RECONCILING: ConditionState(False, reason, ""),
            STALLED: ConditionState(True, reason, message),
        }
    return {
        READY: ConditionState(False, reason, message),
        RECONCILING: ConditionState(True, reason, message),
        STALLED: ConditionState(False, reason, ""),
    }


def invalid_spec_outcome(
    status: _Status, field_path: str, message: str, reason: Reason | str = Reason.INVALID_SPEC
) -> Outcome:
    reason = Reason(reason)  # SpecError carries InvalidSpec or PolicyViolation as text
    text = f"{field_path}: {message}" if field_path else message
    # One event per transition: a resync of the same generation, stalled the same way, posts none.
    same = (STALLED, "True", reason, text, status.generation)
    previous = status.previous.conditions
    repeated = any((c.type, c.status, c.reason, c.message, c.observed_generation) == same for c in previous)
    status.conditions(_failure("stalled", reason, text))
    status.set(phase=Phase.FAILED.value, failureReason=text)
    events = [] if repeated else [("Warning", reason.value, text)]
    return Outcome(status.build(), Next.STALLED, message=text, events=events)


def status_for_invalid_body(
    previous: DjlEndpointStatus, generation: int, field_path: str, message: str, now: dt.datetime
) -> Outcome:
    """For bodies that do not even parse into the typed models (the API server should prevent this)."""
    return invalid_spec_outcome(_Status(previous, generation, now), field_path, message)


# -- the error vocabulary ---------------------------------------------------------


_S3_OPERATIONS = frozenset(
    {"ListObjectsV2", "ListObjects", "PutObject", "GetObject", "HeadObject", "DeleteObject", "DeleteObjects"}
)
_AUTOSCALING_OPERATIONS = frozenset(a.value for a in scaling.ScalingAction) | {
    "DescribeScalableTargets",
    "DescribeScalingPolicies",
    "DescribeScheduledActions",
    "DescribeScalingActivities",
}


def _aws_action(exc: ClientError) -> str:
    operation = exc.operation_name or "Unknown"
    if operation in _S3_OPERATIONS or operation[0].islower():
        service = "s3"
    elif operation == "GetResources":
        service = "tag"
    elif operation in _AUTOSCALING_OPERATIONS:
        service = "application-autoscaling"
    else:
        service = "sagemaker"
    return f"{service}:{operation}"


# How to release a resource whose AWS side cannot be deleted (posted with every denial on delete).
RELEASE_HINT = (
    "to release the resource and leave its AWS resources in place, set spec.deletionPolicy to Retain "
    '(kubectl patch djlendpoint NAME --type=merge -p \'{"spec":{"deletionPolicy":"Retain"}}\')'
)


def _failed(
    status: _Status,
    next_step: Next,
    reason: Reason,
    text: str,
    *,
    delay: float = 0.0,
    warn: bool = True,
    stalled: bool | None = None,
) -> Outcome:
    """Status and continuation for a step that failed; ``warn`` also records it and posts a Warning event."""
    is_stalled = next_step is Next.STALLED if stalled is None else stalled
    status.conditions(_failure("stalled" if is_stalled else "progress", reason, text))
    if warn:
        status.set(failureReason=text)
    events = [("Warning", reason.value, text)] if warn else []
    return Outcome(status.build(), next_step, delay=delay, message=text, events=events)


def _error_outcome(exc: BaseException, status: _Status, settings: Settings, phase: Phase) -> Outcome:
    """Map an error raised while acting to status and a way to continue.

    While deleting nothing is Stalled: the finalizer must run until the AWS side is gone (giving
    up would leak it), so what would stall a reconcile is retried slowly, and reported as such.
    """
    status.set(phase=phase.value)
    deleting = phase is Phase.DELETING
    stall, stall_delay = (Next.RETRY, settings.access_denied_backoff) if deleting else (Next.STALLED, 0.0)
    if isinstance(exc, ArtifactStoreError):
        # A bucket or IAM fix needs no spec change: keep looking, slowly (Reconciling, not Stalled).
        denied = exc.code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled")
        reason = Reason.ACCESS_DENIED if denied else Reason.ARTIFACT_STORE_ERROR
        text = f"{exc}; {RELEASE_HINT}" if denied and phase is Phase.DELETING else str(exc)
        return _failed(status, Next.RETRY, reason, text, delay=settings.access_denied_backoff)
    if isinstance(exc, SpecError) and not deleting:  # PolicyError included: reason PolicyViolation
        return invalid_spec_outcome(status, exc.field, exc.message, exc.reason)
    if isinstance(exc, OwnershipConflict):
        reason = Reason.ENDPOINT_NAME_CONFLICT if exc.kind == "endpoint" else Reason.RESOURCE_NAME_CONFLICT
        return _failed(status, stall, reason, f"{exc}; it is left untouched", delay=stall_delay)
    if isinstance(exc, ClientError):
        kind = classify(exc)
        code, message = error_code(exc), error_message(exc)
        if kind is ErrorKind.ACCESS_DENIED:
            text = f"{_aws_action(exc)} was denied: {message}"
            if phase is Phase.DELETING:
                text = f"{text}; {RELEASE_HINT}"
            return _failed(status, Next.RETRY, Reason.ACCESS_DENIED, text, delay=settings.access_denied_backoff)
        if kind is ErrorKind.INVALID:
            text = f"{exc.operation_name} refused ({code}): {message}"
            return _failed(status, stall, Reason.AWS_REQUEST_REJECTED, text, delay=stall_delay)
        if kind in (ErrorKind.RETRYABLE, ErrorKind.IN_USE, ErrorKind.NOT_FOUND, ErrorKind.ALREADY_EXISTS):
            # The delay is the resource's exponential backoff (the scheduler's), from settings.transient_backoff.
            text = f"{exc.operation_name}: {code}: {message} (retrying)"
            return _failed(status, Next.BACKOFF, Reason.RETRYING, text, warn=False)
    if isinstance(exc, BotoCoreError):
        text = f"AWS unreachable: {exc} (retrying)"
        return _failed(status, Next.BACKOFF, Reason.RETRYING, text, warn=False)
    text = f"unexpected error: {type(exc).__name__}: {exc}"
    outcome = _failed(status, Next.UNEXPECTED, Reason.RETRYING, text, warn=False)
    outcome.error = exc
    return outcome


def _continue(result: Plan, settings: Settings) -> tuple[Next, float]:
    if result.next is Next.POLL:
        return Next.POLL, settings.poll_interval
    if result.next is Next.RETRY:
        return Next.RETRY, result.retry_in or settings.capacity_backoff
    return result.next, 0.0


# -- reconcile ----------------------------------------------------------------------


def _adapter(clients: RegionClients, ctx: Context) -> SageMakerAdapter:
    return SageMakerAdapter(clients.sagemaker, ctx.proofs, clients.tagging)


def _other_owned_endpoints(sagemaker: SageMakerAdapter, uid: str, *, besides: str) -> tuple[ObservedEndpoint, ...]:
    """Our endpoints under names other than ``besides`` (earlier spec.endpointName values), as they are now."""
    found = []
    for name in sagemaker.owned_endpoints(uid).names:
        if name.lower() == besides.lower():
            continue
        observed = sagemaker.observe_endpoint(name, owner_uid=uid)
        if observed is not None and observed.owned:
            found.append(observed)
    return tuple(found)


def accept(resource: DjlEndpointResource, ctx: Context) -> Outcome:
    """A new generation's first status, written before any AWS call: Reconciling, or the spec's stall.

    Nothing here reaches AWS, so even under a full throttling storm a new spec reads
    ``observedGeneration`` = its generation and ``Reconciling=True`` at once.
    """
    status = _Status(resource.status, resource.generation, ctx.clock())
    try:
        desired = desired_deployment(resource, rules=ctx.settings.policy)  # local only: no AWS call
    except SpecError as exc:  # PolicyError included: reason PolicyViolation
        return invalid_spec_outcome(status, exc.field, exc.message, exc.reason)
    first = resource.status.endpoint_name is None
    phase, reason = (Phase.CREATING, Reason.CREATING) if first else (Phase.UPDATING, Reason.UPDATING)
    # The planner's wording for the step that follows, so the message does not flicker.
    name = desired.target.endpoint_name
    message = f"creating endpoint {name}" if first else f"updating endpoint {name} to generation {resource.generation}"
    status.conditions(_failure("progress", reason, message))
    status.set(phase=phase.value, endpointName=desired.target.endpoint_name, modelName=desired.target.model_name)
    if resource.status.phase == Phase.ROLLED_BACK:
        # Stalled means "until the spec changes": any change after a rollback tries the update again,
        # even one that leaves the config alone (a rollout strategy or alarm edit). The rolled-back
        # request is history, so this generation has asked for no config yet.
        status.set(desiredEndpointConfigName=None)
    # Deprecated families and engines still deploy: one Warning per generation says so.
    events = [("Warning", "DeprecatedImage", desired.image_notice)] if desired.image_notice else []
    return Outcome(status.build(), Next.POLL, delay=0.0, message=message, events=events)


def _observe_desired_endpoint(
    desired: DesiredDeployment, resource: DjlEndpointResource, sagemaker: SageMakerAdapter
) -> tuple[DesiredDeployment, ObservedEndpoint | None]:
    """The endpoint the spec asks for, as it is now.

    A derived name from an operator version before owner-aware names is kept when the last
    status saw the endpoint under it and its owner-uid tag proves it ours, so an upgrade keeps
    the URL clients call (status is only the hint where to look; the tag is the proof).
    """
    if resource.spec.endpoint_name is None:
        legacy = naming.legacy_endpoint_name(resource.namespace, resource.name)
        seen = naming.name_from_arn(resource.status.endpoint_arn or "", "endpoint")
        if legacy != desired.target.endpoint_name and seen == legacy.lower():
            kept = sagemaker.observe_endpoint(legacy, owner_uid=resource.uid)
            if kept is not None and kept.owned:
                return desired.on_endpoint(legacy), kept
    return desired, sagemaker.observe_endpoint(desired.target.endpoint_name, owner_uid=resource.uid)


def _snapshot_wait(status: _Status, gate: snapshot.Gate, settings: Settings) -> Outcome:
    """The copy runs, or failed: its progress or its failure, and nothing else happens yet."""
    status.set(phase=Phase.PACKAGING.value)
    status.conditions(_failure("stalled" if gate.stalled else "progress", gate.reason, gate.message))
    events = list(gate.events)
    if gate.warn:
        status.set(failureReason=gate.message)
        events.append(("Warning", gate.reason.value, gate.message))
    delay = gate.delay
    if delay is None:
        # A copy in flight reports its progress every few seconds (no AWS or Hub call: it is in memory).
        progress = min(settings.poll_interval, snapshot.PROGRESS_SECONDS)
        delay = settings.access_denied_backoff if gate.next is Next.RETRY else progress
    return Outcome(status.build(), gate.next, delay=delay, message=gate.message, events=events)


# What the endpoint does right after these actions is known at once (Creating, Updating, Deleting or
# gone): the reconcile looks once more before it writes status, as its next look would.
_LOOK_AGAIN_AFTER = frozenset({Action.CREATE_ENDPOINT, Action.UPDATE_ENDPOINT, Action.DELETE_ENDPOINT})


def reconcile(resource: DjlEndpointResource, ctx: Context) -> Outcome:
    """Converge one DjlEndpoint a step towards its spec.

    A step that created, updated or deleted the endpoint is followed at once by a second look, as
    if it were the next reconcile (its status as the first one left it): status then reports what
    the endpoint is doing now, and an endpoint event or status read that only repeats what that
    look saw needs no reconcile of its own. One status write instead of two, the same AWS calls.
    """
    first = _reconcile_step(resource, ctx)
    if not first.acted_on_endpoint:
        return first
    return _then(first, _reconcile_step(_with_status(resource, first.status), ctx))


def _with_status(resource: DjlEndpointResource, written: dict[str, Any]) -> DjlEndpointResource:
    """The resource as the next look would read it once ``written`` (a merge patch) is applied."""
    return resource.model_copy(update={"status": _merged(resource.status, written)})


def _merged(previous: DjlEndpointStatus, written: dict[str, Any]) -> DjlEndpointStatus:
    merged = {**previous.model_dump(by_alias=True, exclude_none=True), **written}
    return DjlEndpointStatus.model_validate({key: value for key, value in merged.items() if value is not None})


def _then(first: Outcome, second: Outcome) -> Outcome:
    """Two looks as one outcome: the second's status over the first's (one patch), both looks' events.

    A second look that failed (throttled, say) changes nothing: the first one's outcome stands,
    and its next look comes when it would have."""
    if second.next in (Next.BACKOFF, Next.UNEXPECTED):
        if second.error is not None:  # a bug only the second look reaches is still an error
            log.error("the look right after acting failed unexpectedly: %s", second.message, exc_info=second.error)
        return first
    second.status = {**first.status, **second.status}
    second.events[:0] = first.events
    return second


def _reconcile_step(resource: DjlEndpointResource, ctx: Context) -> Outcome:
    """One look: observe, plan, act."""
    status = _Status(resource.status, resource.generation, ctx.clock())
    try:
        desired = desired_deployment(resource, rules=ctx.settings.policy)  # local only: no AWS call
    except SpecError as exc:  # PolicyError included: reason PolicyViolation
        return invalid_spec_outcome(status, exc.field, exc.message, exc.reason)
    snapshot_events: list[tuple[str, str, str]] = []
    if resource.spec.model.snapshot:
        # The Hub commit in S3 first; the deployment then reads its weights from there.
        try:
            gate = ctx.copies.step(resource, ctx.clients.for_region(resource.spec.aws.region).s3)
        except Exception as exc:
            return _error_outcome(exc, status, ctx.settings, resource.status.phase or Phase.PENDING)
        status.set(snapshot=gate.status)
        if gate.resource is None:
            return _snapshot_wait(status, gate, ctx.settings)
        resource, snapshot_events = gate.resource, list(gate.events)
        desired = desired_deployment(resource, rules=ctx.settings.policy)
    elif resource.status.snapshot is not None:
        status.set(snapshot=None)

    status.set(
        endpointName=desired.target.endpoint_name,
        modelName=desired.target.model_name,
        imageUri=desired.image_uri,
        artifact={"uri": desired.artifact_uri, "sha256": desired.package.sha256},
    )
    clients = ctx.clients.for_region(desired.target.region)
    sagemaker = _adapter(clients, ctx)
    phase = resource.status.phase or Phase.PENDING
    try:
        desired, observed = _observe_desired_endpoint(desired, resource, sagemaker)
        endpoint = desired.target.endpoint_name
        # An operator upgrade never moves a deployed endpoint to a newer image by itself.
        desired = keep_live_image(desired, resource, sagemaker, observed, ctx.settings.policy).on_endpoint(endpoint)
        status.set(
            endpointName=endpoint,
            imageUri=desired.image_uri,
            imageNotice=desired.image_notice,
            newerImageUri=desired.newer_image_uri,
        )
        pending = ctx.cleanup_pending(resource.uid, resource.generation)

        def decide(others: tuple[ObservedEndpoint, ...] | None) -> Plan:
            return plan(
                desired.target,
                observed,
                resource.status,
                now=status.now,
                capacity_backoff=ctx.settings.capacity_backoff,
                generation=resource.generation,
                others=others,
                cleanup_pending=pending,
            )

        result = decide(None)
        if result.needs_owned_endpoints:
            result = decide(_other_owned_endpoints(sagemaker, resource.uid, besides=desired.target.endpoint_name))
        phase = result.phase
        _describe_observed(status, observed, clients)
        events: list[tuple[str, str, str]] = []
        autoscaler = AutoScalingAdapter(clients.autoscaling)
        for action in result.actions:
            if action is Action.UPLOAD_ARTIFACT:
                phase = Phase.PACKAGING
            if action is Action.COLLECT_ROLLED_BACK:
                # Until the rolled-back model and config are gone the rollback is not "seen": a failure
                # here keeps the earlier phase, so the next look collects them again.
                phase = resource.status.phase or Phase.UPDATING
            try:
                event = _execute(action, result, desired, observed, sagemaker, autoscaler, clients, resource, status)
            except Exception:
                if action is Action.CREATE_MODEL:
                    _drop_unreferenced_artifact(sagemaker, ArtifactStore(clients.s3), desired)
                raise
            events += [event] if event else []
            phase = result.phase
        # After a rollback the old config serves on (Stalled): an instance type change deregistered
        # the target before the update, so the spec's autoscaling goes back on what serves.
        if observed is not None and (result.ready or result.phase is Phase.ROLLED_BACK):
            events += _reconcile_scaling(resource, observed, autoscaler, status)
        ctx.set_cleanup_pending(resource.uid, result.cleanup_pending)
    except Exception as exc:  # mapped to the error vocabulary; nothing is lost
        log.debug("reconcile of %s/%s failed", resource.namespace, resource.name, exc_info=True)
        status.set(desiredEndpointConfigName=resource.status.desired_endpoint_config_name)
        outcome = _error_outcome(exc, status, ctx.settings, phase)
        outcome.events[:0] = snapshot_events
        return outcome

    status.conditions(result.conditions)
    status.set(
        phase=result.phase.value,
        endpointConfigName=result.serving_config,
        desiredEndpointConfigName=result.requested_config,
        failureReason=result.failure_reason,
        rollout=result.rollout,
    )
    next_step, delay = _continue(result, ctx.settings)
    if next_step is Next.POLL:
        delay = ctx.settings.status_poll_interval  # with endpoint events, polling is only the safety net
    message = result.conditions[READY].message
    events += [result.event] if result.event else []
    seen = (observed.status, observed.last_modified) if observed is not None and observed.owned else (None, None)
    return Outcome(
        status.build(),
        next_step,
        delay=delay,
        message=message,
        events=snapshot_events + events,
        seen=seen,
        acted_on_endpoint=bool(_LOOK_AGAIN_AFTER.intersection(result.actions)),
    )


def _describe_observed(status: _Status, observed: ObservedEndpoint | None, clients: RegionClients) -> None:
    if observed is not None and observed.owned:
        status.set(
            endpointArn=observed.arn,
            endpointStatus=observed.status,
            endpointUrl=clients.invoke_url(observed.name),
            instances=_instances(observed),
        )
    else:
        status.set(endpointArn=None, endpointStatus=None, endpointUrl=None, instances=None)


def _instances(observed: ObservedEndpoint) -> dict[str, Any] | None:
    """status.instances: what the scale subresource and the INSTANCES column read."""
    current, wanted = observed.current_instances, observed.desired_instances
    if current is None and wanted is None:
        return None
    return {
        "current": current,
        "desired": wanted,
        "summary": f"{current if current is not None else '-'}/{wanted if wanted is not None else '-'}",
        # The scale subresource needs a selector field; SageMaker instances are not pods, so none matches.
        "selector": f"{api.GROUP}/endpoint={observed.name}",
    }


def _reconcile_scaling(
    resource: DjlEndpointResource, observed: ObservedEndpoint, autoscaler: AutoScalingAdapter, status: _Status
) -> list[tuple[str, str, str]]:
    """Make the endpoint's scalable target what spec.autoscaling says (the endpoint is ours and serves the
    spec, or the config an update rolled back to).

    No Application Auto Scaling call at all for a resource that never had autoscaling (the
    status only says whether to look: a target left behind goes with the endpoint or the finalizer).
    """
    desired = scaling.desired_scaling(resource.spec, observed.name, resource.uid)
    previous = resource.status.autoscaling
    events: list[tuple[str, str, str]] = []
    if desired is None and previous is None:
        return events
    rid = scaling.resource_id(observed.name)
    found = autoscaler.find(rid)
    result = scaling.plan_scaling(desired, found, previous.applied if previous else None)
    if desired is not None and previous is None and result.actions:
        # Recorded before the first call: should a later one fail, the status still says there is
        # something to look at, so removing spec.autoscaling then deregisters what went through.
        status.set(autoscaling={"policyName": desired.policy_name, "applied": None})
    for action in result.actions:
        if action is scaling.ScalingAction.DEREGISTER:
            autoscaler.deregister(rid)
        elif desired is None:
            raise AssertionError(f"unexpected {action} without spec.autoscaling")
        elif action is scaling.ScalingAction.REGISTER:
            autoscaler.register(desired)
        elif action is scaling.ScalingAction.PUT_POLICY:
            autoscaler.put_policy(desired)
        elif action is scaling.ScalingAction.PUT_SCHEDULED_ACTIONS:
            for scheduled in result.put_actions:
                autoscaler.put_scheduled_action(rid, scheduled)
        elif action is scaling.ScalingAction.DELETE_SCHEDULED_ACTIONS:
            for name in result.delete_actions:
                autoscaler.delete_scheduled_action(rid, name)
    events += [result.event] if result.event else []
    activity = found.last_activity if found else None
    moved = scaling.scaling_event(
        resource.status.instances.desired if resource.status.instances else None,
        observed.desired_instances,
        (activity or {}).get("Cause"),
    )
    events += [moved] if moved else []
    if desired is None:
        status.set(autoscaling=None)
        return events
    registered = scaling.ScalingAction.REGISTER in result.actions or found is None
    status.set(
        autoscaling={
            "minInstances": desired.min if registered or found is None else found.min,
            "maxInstances": desired.max if registered or found is None else found.max,
            "policyName": desired.policy_name,
            "applied": result.applied,
            "lastActivity": activity_status(activity),
        }
    )
    return events


def _execute(
    action: Action,
    result: Plan,
    desired: DesiredDeployment,
    observed: ObservedEndpoint | None,
    sagemaker: SageMakerAdapter,
    autoscaler: AutoScalingAdapter,
    clients: RegionClients,
    resource: DjlEndpointResource,
    status: _Status,
) -> tuple[str, str, str] | None:
    uid = resource.uid
    if action is Action.UPLOAD_ARTIFACT and desired.files_prefix is not None:
        files = desired.package.files
        sent = ArtifactStore(clients.s3).create_files(resource.spec, prefix=desired.files_prefix, files=files)
        if sent:
            return (
                "Normal",
                "Packaging",
                f"uploaded {len(files)} model files ({sent} bytes) to {desired.artifact_uri}",
            )
    elif action is Action.UPLOAD_ARTIFACT:
        uploaded = ArtifactStore(clients.s3).create(
            resource.spec, namespace=resource.namespace, name=resource.name, owner_uid=uid, pkg=desired.package
        )
        if uploaded.uploaded:
            size = len(desired.package.data)
            return ("Normal", "Packaging", f"uploaded model.tar.gz ({size} bytes) to {uploaded.uri}")
    elif action is Action.CREATE_MODEL:
        sagemaker.create_model(desired.model_request, owner_uid=uid)
    elif action is Action.CREATE_ENDPOINT_CONFIG:
        sagemaker.create_endpoint_config(desired.config_request, owner_uid=uid)
    elif action is Action.CREATE_ENDPOINT:
        arn = sagemaker.create_endpoint(desired.endpoint_request, owner_uid=uid)
        if arn:  # a report for users; ownership is proven by tags, never read back from status
            status.set(endpointArn=arn)
    elif action is Action.UPDATE_ENDPOINT:
        assert observed is not None and observed.owned
        live_type, live_count = _live_variant(sagemaker, observed.config_name)
        wanted_type = desired.config_request["ProductionVariants"][0]["InstanceType"]
        update = plan_variant_update(live_type, live_count, wanted_type, desired.instance_count)
        if update.deregister_first:
            autoscaler.deregister(scaling.resource_id(observed.name))  # registered again once InService
        sagemaker.update_endpoint(
            requests.update_endpoint_request(
                endpoint_name=observed.name,
                config_name=desired.target.config_name,
                instance_count_changed=update.reset_count,
                deployment_config=rollout.deployment_config(resource.spec.rollout),
            )
        )
    elif action is Action.DELETE_ENDPOINT:
        assert observed is not None and observed.owned
        _delete_endpoint(sagemaker, autoscaler, observed.name)
    elif action is Action.DELETE_OTHER_ENDPOINTS:
        for name in result.delete_endpoints:
            _delete_endpoint(sagemaker, autoscaler, name)
    elif action is Action.COLLECT_GARBAGE:
        _collect_garbage(
            sagemaker,
            ArtifactStore(clients.s3),
            uid=uid,
            folders=[ArtifactFolder(desired.scope.bucket, desired.scope.artifact_prefix)],
            keep=frozenset({desired.target.model_name, desired.target.config_name}),
            keep_artifact=None if desired.files_prefix else (desired.scope.bucket, desired.artifact_key),
            keep_prefixes=desired.kept_prefixes,
        )
    elif action is Action.COLLECT_ROLLED_BACK:
        assert observed is not None and observed.owned
        _collect_rolled_back(sagemaker, ArtifactStore(clients.s3), desired, observed.config_name, uid)
    else:  # DELETE_ALL_OWNED only happens in finalize()
        raise AssertionError(f"unexpected action {action}")
    return None


def _collect_rolled_back(
    sagemaker: SageMakerAdapter, store: ArtifactStore, desired: DesiredDeployment, live_config: str, uid: str
) -> None:
    """After a rollback, only what the endpoint serves stays: the rolled-back model, config and
    artifact go (the next spec change creates what it needs anew)."""
    described = sagemaker.describe_endpoint_config(live_config) or {}
    live_model = (described.get("ProductionVariants") or [{}])[0].get("ModelName")
    if not live_model:
        return  # the live config's model is unknown: nothing can be proven unused
    folders = [ArtifactFolder(desired.scope.bucket, desired.scope.artifact_prefix)]
    keep_artifact = None
    keep_prefixes: tuple[tuple[str, str], ...] = ()
    container = (sagemaker.describe_model(live_model) or {}).get("PrimaryContainer") or {}
    live_folder = folder_of_container(container, uid)
    if live_folder is not None:
        # The live artifact's folder is looked at too: its other keys go, what the live model reads
        # stays (its model.tar.gz, or a snapshot's files and commit, the marker beside it included).
        folders.append(live_folder)
        url = container.get("ModelDataUrl") or ""
        if url:
            keep_artifact = (live_folder.bucket, url.removeprefix("s3://").partition("/")[2])
        keep_prefixes = model_data.kept_prefixes(container, live_folder.bucket, live_folder.folder)
    _collect_garbage(
        sagemaker,
        store,
        uid=uid,
        folders=folders,
        keep=frozenset({live_config, live_model}),
        keep_artifact=keep_artifact,
        keep_prefixes=keep_prefixes,
    )


def _drop_unreferenced_artifact(sagemaker: SageMakerAdapter, store: ArtifactStore, desired: DesiredDeployment) -> None:
    """An artifact lives only as long as a model of ours that reads it (the model is its record).

    When the model could not be created, the artifact just uploaded is removed again (the next
    try uploads it anew), so a spec that moves to another bucket meanwhile leaves nothing behind
    that no model points at. Kept whenever any model of that name exists.
    """
    try:
        if sagemaker.describe_model(desired.target.model_name) is None:
            store.delete(desired.scope.bucket, desired.artifact_keys)
    except (ClientError, BotoCoreError):
        log.debug("could not remove the unreferenced artifact %s", desired.artifact_uri, exc_info=True)


def _live_variant(sagemaker: SageMakerAdapter, live_config: str) -> tuple[str | None, int | None]:
    """Instance type and InitialInstanceCount of the config serving now (None, None: unknown)."""
    described = sagemaker.describe_endpoint_config(live_config) if live_config else None
    if described is None:
        return None, None
    variant = (described.get("ProductionVariants") or [{}])[0]
    return variant.get("InstanceType"), variant.get("InitialInstanceCount")


def _delete_endpoint(sagemaker: SageMakerAdapter, autoscaler: AutoScalingAdapter, name: str) -> None:
    """DeregisterScalableTarget before DeleteEndpoint: scaling stops before the endpoint goes."""
    autoscaler.deregister(scaling.resource_id(name))
    sagemaker.delete_endpoint(name)


def _observe_owned(
    sagemaker: SageMakerAdapter, store: ArtifactStore, *, uid: str, folders: list[ArtifactFolder], skip: frozenset[str]
) -> OwnedWorld:
    """Our configs and models (by the owner id in their names, proven by tag; ``skip`` not even
    checked), the artifact folder each model reads, and the keys in the current spec's folders."""
    name_part = f"-{naming.owner_id(uid)}-"
    configs = tuple(sagemaker.owned_endpoint_configs(name_part, uid, skip))
    models = []
    for model in sagemaker.owned_models(name_part, uid, skip):
        described = sagemaker.describe_model(model) or {}
        models.append(ObservedModel(model, folder_of_container(described.get("PrimaryContainer") or {}, uid)))
    artifacts = tuple((folder, store.find(folder)) for folder in dict.fromkeys(folders))
    return OwnedWorld(configs=configs, models=tuple(models), artifacts=artifacts)


def _collect(sagemaker: SageMakerAdapter, store: ArtifactStore, collection: Collection) -> None:
    """Carry out :func:`~djl_operator.planner.plan_collection`'s decision, in its order."""
    for config in collection.configs:
        sagemaker.delete_endpoint_config(config)
    emptied: set[ArtifactFolder] = set()
    for model in collection.models:
        if model.reads in collection.folders_before_models and model.reads not in emptied:
            store.delete_folder(model.reads)
            emptied.add(model.reads)
        sagemaker.delete_model(model.name)
    for bucket, keys in collection.keys:
        store.delete(bucket, keys)


def _collect_garbage(
    sagemaker: SageMakerAdapter,
    store: ArtifactStore,
    *,
    uid: str,
    folders: list[ArtifactFolder],
    keep: frozenset[str] = frozenset(),
    keep_artifact: tuple[str, str] | None = None,
    keep_prefixes: tuple[tuple[str, str], ...] = (),
) -> None:
    """Observe what we own besides endpoints, let the planner decide, delete that."""
    world = _observe_owned(sagemaker, store, uid=uid, folders=folders, skip=keep)
    collection = plan_collection(world, keep=keep, keep_artifact=keep_artifact, keep_prefixes=keep_prefixes)
    _collect(sagemaker, store, collection)


# -- finalize -----------------------------------------------------------------------


@dataclass(frozen=True)
class DeletionTarget:
    """What the finalizer needs, and nothing more: it must work even when the spec no longer parses.

    Everything the resource owns is found from its uid (owner tags, and the
    owner id in model and config names); the spec only adds where to look.
    """

    uid: str
    namespace: str
    name: str
    region: str
    retain: bool
    endpoint_name: str | None = None  # the one the current spec names
    artifact_location: tuple[str, str] | None = None  # (bucket, folder) of the current spec


def deletion_target(resource: DjlEndpointResource) -> DeletionTarget:
    spec = resource.spec
    scope = owned_scope(resource)
    return DeletionTarget(
        uid=resource.uid,
        namespace=resource.namespace,
        name=resource.name,
        region=spec.aws.region,
        retain=spec.deletion_policy.value == "Retain",
        endpoint_name=naming.endpoint_name(resource.namespace, resource.name, spec.endpoint_name),
        artifact_location=(scope.bucket, scope.artifact_prefix),
    )


def finalize(target: DeletionTarget | DjlEndpointResource, ctx: Context, *, generation: int = 0) -> Outcome:
    """One step of deletion. ``Next.DONE`` means the finalizer may be removed.

    As in :func:`reconcile`, a step that deleted an endpoint looks again at once: an endpoint that is
    already gone lets the rest go in the same call (one finalizer run instead of two)."""
    if isinstance(target, DjlEndpointResource):
        previous, generation = target.status, target.generation
        target = deletion_target(target)
    else:
        previous = DjlEndpointStatus()
    first = _finalize_step(target, previous, generation, ctx)
    if not first.acted_on_endpoint:
        return first
    return _then(first, _finalize_step(target, _merged(previous, first.status), generation, ctx))


def _finalize_step(target: DeletionTarget, previous: DjlEndpointStatus, generation: int, ctx: Context) -> Outcome:
    status = _Status(previous, generation, ctx.clock())
    if not ctx.copies.stop(target.uid):
        # A copy still writing would put objects back after the folder is emptied: it stops at its next part.
        text = "stopping the snapshot copy before deleting"
        status.set(phase=Phase.DELETING.value)
        return _failed(status, Next.POLL, Reason.DELETING, text, delay=1.0, warn=False)
    clients = ctx.clients.for_region(target.region)
    sagemaker = _adapter(clients, ctx)
    observed: tuple[ObservedEndpoint, ...] = ()
    try:
        if not target.retain:
            observed = _other_owned_endpoints(sagemaker, target.uid, besides=target.endpoint_name or "")
            if target.endpoint_name:
                # The Tagging API may lag a create by a little: look the current name up directly too.
                current = sagemaker.observe_endpoint(target.endpoint_name, owner_uid=target.uid)
                observed += (current,) if current is not None and current.owned else ()
        result = plan_delete(observed, retain=target.retain)
        autoscaler = AutoScalingAdapter(clients.autoscaling)
        for name in result.deregister:
            autoscaler.deregister(scaling.resource_id(name))
        for action in result.actions:
            if action is Action.DELETE_ENDPOINT:
                for name in result.delete_endpoints:
                    sagemaker.delete_endpoint(name)
            elif action is Action.DELETE_ALL_OWNED:
                location = [ArtifactFolder(*target.artifact_location)] if target.artifact_location else []
                store = ArtifactStore(clients.s3)
                _collect_garbage(sagemaker, store, uid=target.uid, folders=location)
                for folder in location:
                    store.delete_uploads(folder)  # a snapshot copy cut short: its parts bill until aborted
    except Exception as exc:
        return _error_outcome(exc, status, ctx.settings, Phase.DELETING)
    status.conditions(result.conditions)
    status.set(phase=Phase.DELETING.value, endpointStatus=observed[0].status if observed else None)
    next_step, delay = _continue(result, ctx.settings)
    return Outcome(
        status.build(),
        next_step,
        delay=delay,
        message=result.conditions[READY].message,
        events=[result.event] if result.event else [],
        acted_on_endpoint=Action.DELETE_ENDPOINT in result.actions,
    )
