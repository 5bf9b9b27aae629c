"""The pure planner: ``plan(desired, observed, previous) -> Plan``.

Given what the spec asks for, what SageMaker reports and what the operator
last wrote to status, decide the actions to take now and the status to
report. No I/O happens here, so every branch is a table test.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from djl_operator import naming, rollout
from djl_operator.api import DjlEndpointStatus, Phase
from djl_operator.aws_errors import is_capacity_failure
from djl_operator.conditions import READY, RECONCILING, STALLED, ConditionState, Reason


class Action(Enum):
    UPLOAD_ARTIFACT = "UploadArtifact"
    CREATE_MODEL = "CreateModel"
    CREATE_ENDPOINT_CONFIG = "CreateEndpointConfig"
    CREATE_ENDPOINT = "CreateEndpoint"
    UPDATE_ENDPOINT = "UpdateEndpoint"
    DELETE_ENDPOINT = "DeleteEndpoint"
    # Delete our endpoints other than the desired one (an earlier spec.endpointName), once it serves.
    DELETE_OTHER_ENDPOINTS = "DeleteOtherEndpoints"
    # Delete our models/configs/artifacts other than the desired (and live) ones.
    COLLECT_GARBAGE = "CollectGarbage"
    # Delete every model/config/artifact we own (final cleanup on resource deletion).
    DELETE_ALL_OWNED = "DeleteAllOwned"
    # An update was rolled back: delete our models/configs/artifacts other than the ones the endpoint serves.
    COLLECT_ROLLED_BACK = "CollectRolledBack"


# The steps that make the desired model and config exist, in order.
PREPARE = (Action.UPLOAD_ARTIFACT, Action.CREATE_MODEL, Action.CREATE_ENDPOINT_CONFIG)


class Next(Enum):
    """What happens next for a resource: the one answer the planner, reconcile and the scheduler share."""

    DONE = "done"  # converged: the drift resync looks again
    POLL = "poll"  # an AWS transition is in progress: look again after the poll interval
    RETRY = "retry"  # look again after a given delay (a capacity failure, a denial)
    BACKOFF = "backoff"  # throttling or a 5xx outlived botocore: the resource's exponential backoff
    STALLED = "stalled"  # nothing changes until the spec does: no AWS call until then
    UNEXPECTED = "unexpected"  # an error we did not classify (a bug): logged, then backed off


@dataclass(frozen=True)
class Desired:
    endpoint_name: str
    model_name: str
    config_name: str
    region: str
    # spec.rollout: how an update moves traffic (for status), and the alarms that may roll it back.
    rollout_strategy: str = "AllAtOnce"
    rollback_alarms: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObservedEndpoint:
    name: str
    arn: str
    status: str
    config_name: str
    failure_reason: str | None = None
    owned: bool = True
    # DescribeEndpoint's LastModifiedTime: when a Failed endpoint failed.
    last_modified: dt.datetime | None = None
    # The production variant's CurrentInstanceCount and DesiredInstanceCount (status.instances).
    current_instances: int | None = None
    desired_instances: int | None = None
    # The update in progress (PendingDeploymentSummary), while one runs.
    progress: rollout.Progress | None = None


@dataclass(frozen=True)
class ArtifactFolder:
    """``s3://bucket/folder`` where one resource's artifacts live (the folder ends with ``/``)."""

    bucket: str
    folder: str


@dataclass(frozen=True)
class ObservedModel:
    """A model of ours (proven by tag) and the artifact folder of ours it reads (None: none of ours)."""

    name: str
    reads: ArtifactFolder | None = None


@dataclass(frozen=True)
class OwnedWorld:
    """Everything besides endpoints a resource owns, as observed: what garbage collection decides over.

    ``configs`` and ``models`` are ours by tag (found by the owner id in their names);
    ``artifacts`` maps each folder looked at (the current spec's) to the keys in it.
    """

    configs: tuple[str, ...] = ()
    models: tuple[ObservedModel, ...] = ()
    artifacts: tuple[tuple[ArtifactFolder, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Collection:
    """What garbage collection deletes, in this order (a crash between steps loses no record):

    the configs; then for each model the folder it reads (unless a folder looked at, whose keys
    are decided one by one) and then the model, so the model stays the record of where its
    artifact is until that is gone; then the stray keys.
    """

    configs: tuple[str, ...] = ()
    models: tuple[ObservedModel, ...] = ()
    folders_before_models: tuple[ArtifactFolder, ...] = ()
    keys: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (bucket, keys)

    @property
    def empty(self) -> bool:
        return not (self.configs or self.models or self.folders_before_models or self.keys)


def plan_collection(
    world: OwnedWorld,
    *,
    keep: frozenset[str] = frozenset(),
    keep_artifact: tuple[str, str] | None = None,
    keep_prefixes: tuple[tuple[str, str], ...] = (),
) -> Collection:
    """Decide what to delete of the owned world: everything but ``keep`` (the model and config that
    serve), ``keep_artifact`` (``(bucket, key)`` the kept model reads) and every key starting with one
    of ``keep_prefixes`` (``(bucket, prefix)``: a served snapshot's files and commit). The finalizer
    keeps nothing."""

    def kept(bucket: str, key: str) -> bool:
        if (bucket, key) == keep_artifact:
            return True
        return any(bucket == b and key.startswith(prefix) for b, prefix in keep_prefixes)

    looked_at = {folder for folder, _ in world.artifacts}
    models = tuple(m for m in world.models if m.name not in keep)
    folders: list[ArtifactFolder] = []
    for model in models:
        if model.reads is None or model.reads in looked_at or model.reads in folders:
            continue
        if any(k is not None and _within(k, model.reads) for k in (keep_artifact, *keep_prefixes)):
            continue  # never empty the folder a kept artifact is in: decide its keys one by one
        folders.append(model.reads)
    keys = []
    for folder, found in sorted(world.artifacts, key=lambda item: (item[0].bucket, item[0].folder)):
        stray = tuple(k for k in found if not kept(folder.bucket, k))
        if stray:
            keys.append((folder.bucket, stray))
    return Collection(
        configs=tuple(c for c in world.configs if c not in keep),
        models=models,
        folders_before_models=tuple(folders),
        keys=tuple(keys),
    )


def _within(artifact: tuple[str, str], folder: ArtifactFolder) -> bool:
    bucket, key = artifact
    return bucket == folder.bucket and key.startswith(folder.folder)


@dataclass
class Plan:
    actions: list[Action]
    phase: Phase
    conditions: dict[str, ConditionState]
    next: Next
    # Status fields: the config serving now, and the one we asked for.
    serving_config: str | None = None
    requested_config: str | None = None
    failure_reason: str | None = None
    event: tuple[str, str, str] | None = None  # (type, reason, message)
    retry_in: float | None = None  # Next.RETRY: seconds until the next look
    ready: bool = False
    permanent: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    # Endpoints DELETE_OTHER_ENDPOINTS (or the finalizer's DELETE_ENDPOINT) deletes.
    delete_endpoints: tuple[str, ...] = ()
    # The planner needs every endpoint we own in the region (``others``) before it can decide.
    needs_owned_endpoints: bool = False
    # Earlier endpoints are still going away: look again, and collect garbage once they are gone.
    cleanup_pending: bool = False
    # Endpoints whose scalable targets are deregistered first (the finalizer): scaling stops before deletion.
    deregister: tuple[str, ...] = ()
    # status.rollout: the update in progress (None clears it).
    rollout: dict[str, Any] | None = None


def _progress(reason: Reason, message: str) -> dict[str, ConditionState]:
    return {
        READY: ConditionState(False, reason, message),
        RECONCILING: ConditionState(True, reason, message),
        STALLED: ConditionState(False, reason, ""),
    }


def _stalled(reason: Reason, message: str) -> dict[str, ConditionState]:
    return {
        READY: ConditionState(False, reason, message),
        RECONCILING: ConditionState(False, reason, ""),
        STALLED: ConditionState(True, reason, message),
    }


def _ready(message: str) -> dict[str, ConditionState]:
    reason = Reason.ENDPOINT_IN_SERVICE
    return {
        READY: ConditionState(True, reason, message),
        RECONCILING: ConditionState(False, reason, ""),
        STALLED: ConditionState(False, reason, ""),
    }


def _may_have_garbage(desired: Desired, previous: DjlEndpointStatus, generation: int | None) -> bool:
    """Only an earlier spec, or names from an earlier operator version, can leave models or configs behind."""
    if generation is None or generation > 1:
        return True
    recorded = (
        (previous.model_name, desired.model_name),
        (previous.endpoint_config_name, desired.config_name),
        (previous.desired_endpoint_config_name, desired.config_name),
    )
    return any(name is not None and name != expected for name, expected in recorded)


def _reason(previous: DjlEndpointStatus, ctype: str) -> str | None:
    """The reason of the previous status's ``ctype`` condition when it was True."""
    for cond in previous.conditions:
        if cond.type == ctype and cond.status == "True":
            return cond.reason
    return None


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _rollout_status(desired: Desired, progress: rollout.Progress) -> dict[str, Any]:
    """status.rollout for an update in progress (what kubectl's ROLLOUT column and `describe` show)."""
    share = "?" if progress.percent is None else f"{progress.percent}%"
    return {
        "strategy": desired.rollout_strategy,
        "stage": progress.stage,
        "trafficPercent": progress.percent,
        "nextStepTime": _timestamp(progress.ends_at) if progress.ends_at else None,
        "endpointConfigName": progress.config_name,
        "summary": f"{desired.rollout_strategy} {share} {progress.stage or 'Pending'}",
    }


def _rollout_event(desired: Desired, progress: rollout.Progress) -> tuple[str, str, str]:
    share = "an unreported share" if progress.percent is None else f"{progress.percent}%"
    until = f", next step at {_timestamp(progress.ends_at)}" if progress.ends_at else ""
    return (
        "Normal",
        "RolloutProgress",
        f"{desired.rollout_strategy} rollout of {progress.config_name}: {progress.stage or 'Pending'}, "
        f"{share} of the traffic on the new config{until}",
    )


def _rollout_moved(progress: rollout.Progress, previous: DjlEndpointStatus) -> bool:
    """Whether the stage or the share changed since the last status (events on transitions only)."""
    seen = previous.rollout
    if seen is None:
        return True
    return (seen.stage, seen.traffic_percent, seen.endpoint_config_name) != (
        progress.stage,
        progress.percent,
        progress.config_name,
    )


# A rolled-back update already reported (Failed: what operators before RolledBack wrote).
_ROLLED_BACK_SEEN = frozenset({Phase.ROLLED_BACK, Phase.FAILED})

# Endpoint statuses in which SageMaker refuses DeleteEndpoint (or is already deleting).
_BUSY = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})


def plan(
    desired: Desired,
    observed: ObservedEndpoint | None,
    previous: DjlEndpointStatus,
    *,
    now: dt.datetime,
    capacity_backoff: float,
    generation: int | None = None,
    others: tuple[ObservedEndpoint, ...] | None = None,
    cleanup_pending: bool = False,
) -> Plan:
    """Decide what to do for a resource that is not being deleted.

    ``generation`` (``metadata.generation``; None when unknown) tells whether an
    earlier spec can have left models, configs or endpoints behind.
    ``others`` are the endpoints other than the desired one that carry our
    owner tag (None: not looked up; the plan says when it needs them).
    ``cleanup_pending`` is this process's memory that earlier endpoints were
    still going away at the last look.
    """
    if observed is None:
        # Only the event's wording depends on this: the last status saw this very endpoint serving.
        seen_name = naming.name_from_arn(previous.endpoint_arn or "", "endpoint")
        drift = seen_name == desired.endpoint_name.lower() and previous.phase in (Phase.IN_SERVICE, Phase.UPDATING)
        return Plan(
            actions=[*PREPARE, Action.CREATE_ENDPOINT],
            phase=Phase.CREATING,
            conditions=_progress(Reason.CREATING, f"creating endpoint {desired.endpoint_name}"),
            next=Next.POLL,
            requested_config=desired.config_name,
            event=(
                (
                    "Warning",
                    "EndpointRecreated",
                    f"endpoint {desired.endpoint_name} was deleted outside the operator; recreating",
                )
                if drift
                else ("Normal", "Creating", f"creating endpoint {desired.endpoint_name} on {desired.config_name}")
            ),
        )

    if not observed.owned and observed.status == "Deleting":
        # Someone's endpoint of that name is going away (a deleted resource of the same name, say): wait for it.
        return Plan(
            [],
            Phase.CREATING,
            _progress(Reason.WAITING_FOR_DELETION, f"waiting for another endpoint named {observed.name} to be deleted"),
            Next.POLL,
            requested_config=desired.config_name,
        )
    if not observed.owned:
        message = (
            f"a SageMaker endpoint named {observed.name} already exists and is not managed by this resource; "
            "set spec.endpointName to another name"
        )
        return Plan(
            actions=[],
            phase=Phase.FAILED,
            conditions=_stalled(Reason.ENDPOINT_NAME_CONFLICT, message),
            next=Next.STALLED,
            permanent=True,
            event=("Warning", "EndpointNameConflict", message),
        )

    live = observed.config_name
    status = observed.status
    on_desired = live == desired.config_name

    if status == "Creating":
        return Plan(
            [],
            Phase.CREATING,
            _progress(Reason.CREATING, f"endpoint is Creating on {live}"),
            Next.POLL,
            serving_config=None,
            requested_config=live,
        )
    if status == "Updating" and on_desired:
        # The spec's config serves and stays: only the instance count is changing (Application Auto
        # Scaling or UpdateEndpointWeightsAndCapacities). Ready, not Reconciling: nothing of the
        # operator's is in progress, and Argo CD/kstatus must not read a scaling endpoint as Progressing.
        scaling_to = f"; scaling to {observed.desired_instances} instances" if observed.desired_instances else ""
        return Plan(
            [],
            Phase.IN_SERVICE,
            _ready(f"endpoint is InService on {live}{scaling_to}"),
            Next.POLL,
            serving_config=live,
            requested_config=desired.config_name,
            ready=True,
        )
    if status in ("Updating", "SystemUpdating", "RollingBack"):
        message = f"endpoint is {status} (serving {live})"
        progress = observed.progress
        if progress is not None and progress.stage is not None:
            share = "" if progress.percent is None else f", {progress.percent}% of the traffic on it"
            until = f" until {_timestamp(progress.ends_at)}" if progress.ends_at else ""
            message += f"; {desired.rollout_strategy} rollout of {progress.config_name}: {progress.stage}{until}{share}"
        return Plan(
            [],
            Phase.UPDATING,
            _progress(Reason(status), message),
            Next.POLL,
            serving_config=live,
            requested_config=previous.desired_endpoint_config_name or desired.config_name,
            rollout=_rollout_status(desired, progress) if progress is not None else None,
            event=(
                _rollout_event(desired, progress)
                if progress is not None and progress.stage is not None and _rollout_moved(progress, previous)
                else None
            ),
        )
    if status == "Deleting":
        return Plan(
            [],
            Phase.CREATING,
            _progress(Reason.WAITING_FOR_DELETION, "waiting for the old endpoint to be deleted"),
            Next.POLL,
            requested_config=desired.config_name,
        )

    if status == "Failed":
        reason_text = observed.failure_reason or "endpoint Failed without a FailureReason"
        if not on_desired:
            # The spec changed since the failure: start over on the new config.
            return Plan(
                actions=[*PREPARE, Action.DELETE_ENDPOINT],
                phase=Phase.CREATING,
                conditions=_progress(
                    Reason.RECREATING_FAILED_ENDPOINT, "deleting the failed endpoint to retry with the new spec"
                ),
                next=Next.POLL,
                requested_config=desired.config_name,
                event=(
                    "Normal",
                    "Recreating",
                    "spec changed after a failure: deleting the failed endpoint to recreate it",
                ),
            )
        if is_capacity_failure(observed.failure_reason):
            # SageMaker's own clock says when it failed; the operator retries by itself: Reconciling.
            failed_at = observed.last_modified or now
            elapsed = max(0.0, (now - failed_at).total_seconds())
            if elapsed >= capacity_backoff:
                return Plan(
                    actions=[Action.DELETE_ENDPOINT],
                    phase=Phase.CREATING,
                    conditions=_progress(Reason.RETRYING_CAPACITY, "retrying after a capacity failure"),
                    next=Next.POLL,
                    requested_config=desired.config_name,
                    failure_reason=observed.failure_reason,
                    event=(
                        "Normal",
                        "RetryingCapacity",
                        "deleting the failed endpoint to retry after a capacity failure",
                    ),
                )
            retry_in = max(1.0, capacity_backoff - elapsed)
            seen = _reason(previous, RECONCILING) == Reason.INSUFFICIENT_CAPACITY
            return Plan(
                actions=[],
                phase=Phase.CREATING,
                conditions=_progress(
                    Reason.INSUFFICIENT_CAPACITY, f"{reason_text}; retrying in {retry_in:.0f}s (capacity backoff)"
                ),
                next=Next.RETRY,
                requested_config=desired.config_name,
                failure_reason=observed.failure_reason,
                retry_in=retry_in,
                event=None if seen else ("Warning", "InsufficientCapacity", reason_text),
            )
        return Plan(
            actions=[],
            phase=Phase.FAILED,
            conditions=_stalled(Reason.ENDPOINT_FAILED, reason_text),
            next=Next.STALLED,
            permanent=True,
            requested_config=desired.config_name,
            failure_reason=observed.failure_reason,
            event=None if previous.phase == Phase.FAILED else ("Warning", "Failed", reason_text),
        )

    if status == "UpdateRollbackFailed":
        reason_text = observed.failure_reason or "update rollback failed"
        return Plan(
            actions=[],
            phase=Phase.FAILED,
            conditions=_stalled(Reason.UPDATE_ROLLBACK_FAILED, f"a mix of old and new may be serving: {reason_text}"),
            next=Next.STALLED,
            permanent=True,
            serving_config=live,
            requested_config=previous.desired_endpoint_config_name,
            failure_reason=observed.failure_reason,
            event=None if previous.phase == Phase.FAILED else ("Warning", "UpdateRollbackFailed", reason_text),
        )

    if status == "OutOfService":
        # SageMaker may bring it back without a spec change: keep looking (Reconciling, not Stalled).
        return Plan(
            [],
            Phase.FAILED,
            _progress(Reason.ENDPOINT_OUT_OF_SERVICE, "endpoint is OutOfService"),
            Next.RETRY,
            serving_config=live,
            retry_in=capacity_backoff,
            failure_reason=observed.failure_reason,
        )

    # InService.
    if on_desired:
        transition = previous.phase != Phase.IN_SERVICE or previous.endpoint_config_name != live
        collect = cleanup_pending or (transition and _may_have_garbage(desired, previous, generation))
        in_service = Plan(
            actions=[],
            phase=Phase.IN_SERVICE,
            conditions=_ready(f"endpoint is InService on {live}"),
            next=Next.DONE,
            serving_config=live,
            requested_config=desired.config_name,
            ready=True,
            event=("Normal", "InService", f"endpoint {observed.name} is InService on {live}") if transition else None,
        )
        if not collect:
            return in_service
        if others is None and (cleanup_pending or generation is None or generation > 1):
            # Only an earlier spec can have named another endpoint: look them up before deciding.
            in_service.needs_owned_endpoints = True
            return in_service
        remaining = [o for o in others or () if o.owned and o.name.lower() != desired.endpoint_name.lower()]
        if remaining:
            # The new endpoint serves: the old ones go. Their configs and models stay until they are gone.
            deletable = tuple(o.name for o in remaining if o.status not in _BUSY)
            in_service.actions = [Action.DELETE_OTHER_ENDPOINTS] if deletable else []
            in_service.delete_endpoints = deletable
            in_service.next = Next.POLL
            in_service.cleanup_pending = True
            if deletable:
                names = ", ".join(deletable)
                in_service.event = ("Normal", "DeletingOldEndpoint", f"{observed.name} serves; deleting {names}")
            return in_service
        in_service.actions = [Action.COLLECT_GARBAGE]
        return in_service

    # A rollback reported to an earlier generation is history: the spec changed since (even if only
    # its rollout or alarms), and Stalled holds only until the spec changes, so the update is tried again.
    reported_earlier = (
        previous.phase == Phase.ROLLED_BACK
        and generation is not None
        and previous.observed_generation is not None
        and previous.observed_generation < generation
    )
    rolled_back = (
        observed.failure_reason
        and previous.desired_endpoint_config_name == desired.config_name
        and not reported_earlier
    )
    if rolled_back:
        alarms = rollout.fired_alarms(observed.failure_reason, desired.rollback_alarms)
        if alarms:
            reason = Reason.ROLLED_BACK_BY_ALARM
            message = (
                f"update to {desired.config_name} was rolled back by CloudWatch alarm {', '.join(alarms)}; "
                f"{live} is still serving: {observed.failure_reason}"
            )
        else:
            reason = Reason.UPDATE_ROLLED_BACK
            message = (
                f"update to {desired.config_name} was rolled back; {live} is still serving: {observed.failure_reason}"
            )
        seen = previous.phase in _ROLLED_BACK_SEEN
        # What is true: the old config serves (phase RolledBack), the spec's is not (Ready=False), and
        # nothing changes until the spec does (Stalled). The rolled-back model and config go once.
        return Plan(
            actions=[] if seen else [Action.COLLECT_ROLLED_BACK],
            phase=Phase.ROLLED_BACK,
            conditions=_stalled(reason, message),
            next=Next.STALLED,
            permanent=True,
            serving_config=live,
            requested_config=desired.config_name,
            failure_reason=observed.failure_reason,
            event=None if seen else ("Warning", reason.value, message),
        )

    out_of_band = previous.endpoint_config_name == desired.config_name
    return Plan(
        actions=[*PREPARE, Action.UPDATE_ENDPOINT],
        phase=Phase.UPDATING,
        conditions=_progress(Reason.UPDATING, f"updating endpoint from {live} to {desired.config_name}"),
        next=Next.POLL,
        serving_config=live,
        requested_config=desired.config_name,
        event=(
            (
                "Warning",
                "DriftRestored",
                f"endpoint was moved to {live} outside the operator; restoring {desired.config_name}",
            )
            if out_of_band
            else ("Normal", "Updating", f"updating endpoint from {live} to {desired.config_name}")
        ),
    )


def plan_delete(owned: tuple[ObservedEndpoint, ...], *, retain: bool) -> Plan:
    """Decide what to do for a resource being deleted (the finalizer).

    ``owned`` are the endpoints that carry our owner tag in the region, under
    any name the resource ever used. Everything else goes once they are gone.
    """
    deleting = _progress(Reason.DELETING, "deleting SageMaker resources")
    if retain:
        return Plan(
            [],
            Phase.DELETING,
            deleting,
            Next.DONE,
            event=("Normal", "Retained", "deletionPolicy Retain: AWS resources left in place"),
        )
    owned = tuple(o for o in owned if o.owned)
    # Deregistered first, busy or not: Application Auto Scaling stops changing what is about to go.
    deregister = tuple(o.name for o in owned)
    if not owned:
        return Plan(
            [Action.DELETE_ALL_OWNED],
            Phase.DELETING,
            deleting,
            Next.DONE,
            event=("Normal", "Deleted", "SageMaker resources and artifacts deleted"),
        )
    deletable = tuple(o.name for o in owned if o.status not in _BUSY)
    if not deletable:
        busy = ", ".join(f"{o.name} ({o.status})" for o in owned)
        return Plan(
            [], Phase.DELETING, _progress(Reason.DELETING, f"waiting for {busy}"), Next.POLL, deregister=deregister
        )
    names = ", ".join(deletable)
    return Plan(
        [Action.DELETE_ENDPOINT],
        Phase.DELETING,
        _progress(Reason.DELETING, f"deleting endpoint {names}"),
        Next.POLL,
        event=("Normal", "Deleting", f"deleting endpoint {names}"),
        delete_endpoints=deletable,
        deregister=deregister,
    )


@dataclass(frozen=True)
class VariantUpdate:
    """How a blue/green UpdateEndpoint treats the live variant."""

    reset_count: bool  # let the new config's count through (else the live, autoscaled count is kept)
    deregister_first: bool  # the instance type changes: AWS refuses it while the variant is a scalable target


def plan_variant_update(
    live_type: str | None, live_count: int | None, desired_type: str, desired_count: int
) -> VariantUpdate:
    """``live_*``: the instance type and InitialInstanceCount of the config serving now (None: unknown).

    The live count (what autoscaling or ``kubectl scale`` set) survives an update unless
    spec.instance.count itself changed. "If the update would change the instance type for any
    model that is a target for auto scaling, the update fails ... deregister the variant as a
    scalable target" first (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html);
    it is registered again once the endpoint is InService.
    """
    return VariantUpdate(
        reset_count=live_count is not None and live_count != desired_count,
        deregister_first=live_type is not None and live_type != desired_type,
    )
