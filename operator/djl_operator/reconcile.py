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
from enum import Enum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from djl_operator import conditions, naming
from djl_operator.api import DjlEndpointResource, DjlEndpointStatus, Phase
from djl_operator.artifacts import requests, upload
from djl_operator.aws_clients import AwsClients, RegionClients
from djl_operator.aws_errors import ErrorKind, classify, error_code, error_message
from djl_operator.conditions import READY, RECONCILING, STALLED, ConditionState
from djl_operator.desired import DesiredDeployment, OwnedScope, desired_deployment, owned_scope
from djl_operator.errors import ArtifactStoreError, SpecError
from djl_operator.planner import Action, ObservedEndpoint, Plan, Wait, plan, plan_delete
from djl_operator.sagemaker_adapter import SageMakerAdapter
from djl_operator.settings import Settings

log = logging.getLogger(__name__)


class Next(Enum):
    DONE = "done"  # converged (or stalled for good): the timer resyncs later
    RETRY = "retry"  # look again after `delay`
    STALLED = "stalled"  # nothing will change until the spec does
    UNEXPECTED = "unexpected"  # an error we did not classify: let kopf back off


@dataclass
class Outcome:
    status: dict[str, Any]
    next: Next
    delay: float = 0.0
    message: str = ""
    events: list[tuple[str, str, str]] = field(default_factory=list)
    error: BaseException | None = None


@dataclass
class Context:
    """Everything reconcile needs from outside: built once at start-up (kopf's memo)."""

    settings: Settings
    clients: AwsClients
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def lock_for(self, uid: str) -> threading.Lock:
        """Handlers and the timer of one resource never reconcile at the same time."""
        with self._locks_guard:
            return self._locks.setdefault(uid, threading.Lock())

    def forget(self, uid: str) -> None:
        with self._locks_guard:
            self._locks.pop(uid, None)


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


def _failure(kind: str, reason: str, message: str) -> dict[str, ConditionState]:
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


def invalid_spec_outcome(status: _Status, field_path: str, message: str, reason: str = "InvalidSpec") -> Outcome:
    text = f"{field_path}: {message}" if field_path else message
    # One event per transition: a resync of the same generation, stalled the same way, posts none.
    same = (STALLED, "True", reason, text, status.generation)
    previous = status.previous.conditions
    repeated = any((c.type, c.status, c.reason, c.message, c.observed_generation) == same for c in previous)
    status.conditions(_failure("stalled", reason, text))
    status.set(phase=Phase.FAILED.value, failureReason=text)
    events = [] if repeated else [("Warning", reason, text)]
    return Outcome(status.build(), Next.STALLED, message=text, events=events)


def status_for_invalid_body(
    previous: DjlEndpointStatus, generation: int, field_path: str, message: str, now: dt.datetime
) -> Outcome:
    """For bodies that do not even parse into the typed models (the API server should prevent this)."""
    return invalid_spec_outcome(_Status(previous, generation, now), field_path, message)


# -- the error vocabulary ---------------------------------------------------------


def _aws_action(exc: ClientError) -> str:
    service = exc.operation_name and ("s3" if exc.operation_name[0].islower() else "sagemaker")
    return f"{service}:{exc.operation_name}"


def _failed(
    status: _Status,
    next_step: Next,
    reason: str,
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
    events = [("Warning", reason, text)] if warn else []
    return Outcome(status.build(), next_step, delay=delay, message=text, events=events)


def _error_outcome(exc: BaseException, status: _Status, settings: Settings, phase: Phase) -> Outcome:
    """Map an error raised while acting to status and a way to continue."""
    status.set(phase=phase.value)
    if isinstance(exc, ArtifactStoreError):
        # A bucket or IAM fix needs no spec change: keep looking, slowly. Only IAM is "in progress".
        denied = exc.code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled")
        reason = "AccessDenied" if denied else "ArtifactStoreError"
        return _failed(status, Next.RETRY, reason, str(exc), delay=settings.access_denied_backoff, stalled=not denied)
    if isinstance(exc, SpecError):  # PolicyError included: reason PolicyViolation
        return invalid_spec_outcome(status, exc.field, exc.message, exc.reason)
    if isinstance(exc, ClientError):
        kind = classify(exc)
        code, message = error_code(exc), error_message(exc)
        if kind is ErrorKind.ACCESS_DENIED:
            text = f"{_aws_action(exc)} was denied: {message}"
            return _failed(status, Next.RETRY, "AccessDenied", text, delay=settings.access_denied_backoff)
        if kind is ErrorKind.INVALID:
            return _failed(
                status, Next.STALLED, "AwsRequestRejected", f"{exc.operation_name} refused ({code}): {message}"
            )
        if kind in (ErrorKind.RETRYABLE, ErrorKind.IN_USE, ErrorKind.NOT_FOUND, ErrorKind.ALREADY_EXISTS):
            text = f"{exc.operation_name}: {code}: {message} (retrying)"
            return _failed(status, Next.RETRY, "Retrying", text, delay=settings.transient_backoff, warn=False)
    if isinstance(exc, BotoCoreError):
        text = f"AWS unreachable: {exc} (retrying)"
        return _failed(status, Next.RETRY, "Retrying", text, delay=settings.transient_backoff, warn=False)
    outcome = _failed(status, Next.UNEXPECTED, "Retrying", f"unexpected error: {type(exc).__name__}: {exc}", warn=False)
    outcome.error = exc
    return outcome


def _continue(result: Plan, settings: Settings) -> tuple[Next, float]:
    if result.wait is Wait.POLL:
        return Next.RETRY, settings.poll_interval
    if result.wait is Wait.CAPACITY:
        return Next.RETRY, result.capacity_retry_in or settings.capacity_backoff
    if result.wait is Wait.NEVER:
        return Next.STALLED, 0.0
    return Next.DONE, 0.0


# -- reconcile ----------------------------------------------------------------------


def reconcile(resource: DjlEndpointResource, ctx: Context) -> Outcome:
    """Converge one DjlEndpoint a step towards its spec."""
    status = _Status(resource.status, resource.generation, ctx.clock())
    try:
        desired = desired_deployment(resource, rules=ctx.settings.policy)  # local only: no AWS call
    except SpecError as exc:  # PolicyError included: reason PolicyViolation
        return invalid_spec_outcome(status, exc.field, exc.message, exc.reason)

    status.set(
        endpointName=desired.target.endpoint_name,
        modelName=desired.target.model_name,
        imageUri=desired.image_uri,
        artifact={"uri": desired.artifact_uri, "sha256": desired.package.sha256},
    )
    clients = ctx.clients.for_region(desired.target.region)
    sagemaker = SageMakerAdapter(clients.sagemaker)
    phase = resource.status.phase or Phase.PENDING
    try:
        observed = sagemaker.observe_endpoint(
            desired.target.endpoint_name, owner_uid=resource.uid, known_arn=resource.status.endpoint_arn
        )
        result = plan(
            desired.target,
            observed,
            resource.status,
            now=status.now,
            capacity_backoff=ctx.settings.capacity_backoff,
            generation=resource.generation,
        )
        phase = result.phase
        _describe_observed(status, observed, clients)
        events: list[tuple[str, str, str]] = []
        for action in result.actions:
            if action is Action.UPLOAD_ARTIFACT:
                phase = Phase.PACKAGING
            event = _execute(action, desired, observed, sagemaker, clients, resource, status)
            events += [event] if event else []
            phase = result.phase
    except Exception as exc:  # mapped to the error vocabulary; nothing is lost
        log.debug("reconcile of %s/%s failed", resource.namespace, resource.name, exc_info=True)
        status.set(desiredEndpointConfigName=resource.status.desired_endpoint_config_name)
        return _error_outcome(exc, status, ctx.settings, phase)

    status.conditions(result.conditions)
    status.set(
        phase=result.phase.value,
        endpointConfigName=result.serving_config,
        desiredEndpointConfigName=result.requested_config,
        failureReason=result.failure_reason,
    )
    next_step, delay = _continue(result, ctx.settings)
    message = result.conditions[READY].message
    events += [result.event] if result.event else []
    return Outcome(status.build(), next_step, delay=delay, message=message, events=events)


def _describe_observed(status: _Status, observed: ObservedEndpoint | None, clients: RegionClients) -> None:
    if observed is not None and observed.owned:
        status.set(
            endpointArn=observed.arn,
            endpointStatus=observed.status,
            endpointUrl=clients.invoke_url(observed.name),
        )
    else:
        status.set(endpointArn=None, endpointStatus=None, endpointUrl=None)


def _execute(
    action: Action,
    desired: DesiredDeployment,
    observed: ObservedEndpoint | None,
    sagemaker: SageMakerAdapter,
    clients: RegionClients,
    resource: DjlEndpointResource,
    status: _Status,
) -> tuple[str, str, str] | None:
    if action is Action.UPLOAD_ARTIFACT:
        uploaded = upload.upload_package(
            clients.s3, resource.spec, namespace=resource.namespace, name=resource.name, package=desired.package
        )
        if uploaded.uploaded:
            size = len(desired.package.data)
            return ("Normal", "Packaging", f"uploaded model.tar.gz ({size} bytes) to {uploaded.uri}")
    elif action is Action.CREATE_MODEL:
        sagemaker.create_model(desired.model_request)
    elif action is Action.CREATE_ENDPOINT_CONFIG:
        sagemaker.create_endpoint_config(desired.config_request)
    elif action is Action.CREATE_ENDPOINT:
        arn = sagemaker.create_endpoint(desired.endpoint_request)
        if arn:  # recorded, so the next look needs no ownership check by tag
            status.set(endpointArn=arn)
    elif action is Action.UPDATE_ENDPOINT:
        assert observed is not None
        sagemaker.update_endpoint(
            requests.update_endpoint_request(
                endpoint_name=observed.name,
                config_name=desired.target.config_name,
                instance_count_changed=_instance_count_changed(sagemaker, observed.config_name, desired.instance_count),
            )
        )
    elif action is Action.DELETE_ENDPOINT:
        assert observed is not None
        sagemaker.delete_endpoint(observed.name)
    elif action is Action.COLLECT_GARBAGE:
        _collect_garbage(
            sagemaker,
            clients.s3,
            desired.scope,
            keep={desired.target.model_name, desired.target.config_name},
            keep_key=desired.artifact_key,
        )
    else:  # DELETE_ALL_OWNED only happens in finalize()
        raise AssertionError(f"unexpected action {action}")
    return None


def _instance_count_changed(sagemaker: SageMakerAdapter, live_config: str, desired_count: int) -> bool:
    """Let the update reset the instance count only when the spec's count itself changed."""
    described = sagemaker.describe_endpoint_config(live_config) if live_config else None
    if described is None:
        return False
    variants = described.get("ProductionVariants") or [{}]
    return bool(variants[0].get("InitialInstanceCount") != desired_count)


def _collect_garbage(
    sagemaker: SageMakerAdapter, s3: Any, scope: OwnedScope, *, keep: set[str], keep_key: str | None
) -> None:
    """Delete our configs, then models, then artifacts that nothing serves any more."""
    skip = frozenset(keep)
    for config in sagemaker.owned_endpoint_configs(scope.name_prefix, scope.uid, skip):
        sagemaker.delete_endpoint_config(config)
    for model in sagemaker.owned_models(scope.name_prefix, scope.uid, skip):
        sagemaker.delete_model(model)
    if keep_key is None:
        upload.delete_artifacts(s3, scope.bucket, scope.artifact_prefix)
    else:
        _delete_other_artifacts(s3, scope.bucket, scope.artifact_prefix, keep_key)


def _delete_other_artifacts(s3: Any, bucket: str, prefix: str, keep_key: str) -> None:
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        stale = [{"Key": o["Key"]} for o in page.get("Contents", []) if o["Key"] != keep_key]
        if stale:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": stale, "Quiet": True})


# -- finalize -----------------------------------------------------------------------


def finalize(resource: DjlEndpointResource, ctx: Context) -> Outcome:
    """One step of deletion. ``Next.DONE`` means the finalizer may be removed."""
    spec = resource.spec
    status = _Status(resource.status, resource.generation, ctx.clock())
    retain = spec.deletion_policy.value == "Retain"
    endpoint = naming.endpoint_name(resource.namespace, resource.name, spec.endpoint_name)
    clients = ctx.clients.for_region(spec.aws.region)
    sagemaker = SageMakerAdapter(clients.sagemaker)
    try:
        observed = (
            None
            if retain
            else sagemaker.observe_endpoint(endpoint, owner_uid=resource.uid, known_arn=resource.status.endpoint_arn)
        )
        result = plan_delete(observed, retain=retain)
        for action in result.actions:
            if action is Action.DELETE_ENDPOINT:
                assert observed is not None
                sagemaker.delete_endpoint(observed.name)
            elif action is Action.DELETE_ALL_OWNED:
                _collect_garbage(sagemaker, clients.s3, owned_scope(resource), keep=set(), keep_key=None)
    except Exception as exc:
        return _error_outcome(exc, status, ctx.settings, Phase.DELETING)
    status.conditions(result.conditions)
    status.set(phase=Phase.DELETING.value, endpointStatus=observed.status if observed else None)
    next_step, delay = _continue(result, ctx.settings)
    return Outcome(
        status.build(),
        next_step,
        delay=delay,
        message=result.conditions[READY].message,
        events=[result.event] if result.event else [],
    )
