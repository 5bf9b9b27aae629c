"""kopf handlers: parse the body, call one service function, write status, map errors.

Handlers are synchronous on purpose: kopf runs them in its thread pool, so the
blocking boto3 calls inside ``reconcile()`` never block the event loop.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from djl_operator import api, metrics, naming, reconcile
from djl_operator.api import DjlEndpointResource, Phase
from djl_operator.artifacts import package
from djl_operator.aws_clients import AwsClients, default_region
from djl_operator.reconcile import Context, Next, Outcome
from djl_operator.settings import Settings

SETTINGS = Settings.from_env()  # the timer interval must be known when the module is imported
ANNOTATION_PREFIX = "djl-operator.io"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{api.GROUP}/finalizer"
    # Keep kopf's bookkeeping out of .status (which users and Argo CD read).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # We post our own, meaningful events (kopf.event ignores this level); kopf's per-handler ones are noise.
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = SETTINGS.workers
    settings.peering.name = "djl-operator"
    if "ctx" not in memo:  # tests may inject a context of their own
        memo["ctx"] = Context(settings=SETTINGS, clients=AwsClients())
    memo.setdefault("inflight", set())
    memo.setdefault("reconciled_at", {})  # uid -> time.monotonic() of this process's last reconcile


def _field_path(error: ErrorDetails) -> str:
    return ".".join(["spec", *(str(p) for p in error["loc"])])


def _parse(body: kopf.Body, ctx: Context) -> DjlEndpointResource | Outcome:
    """The typed resource, or the Stalled outcome for a body that does not parse."""
    try:
        return DjlEndpointResource.from_body(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        return reconcile.status_for_invalid_body(
            api.DjlEndpointStatus.model_validate(api._plain(body.get("status") or {})),
            int(body["metadata"].get("generation") or 0),
            _field_path(first),
            first["msg"],
            ctx.clock(),
        )


def _apply(outcome: Outcome, body: kopf.Body, patch: kopf.Patch, *, raise_errors: bool = True) -> None:
    patch.status.update(outcome.status)
    for event_type, reason, message in outcome.events:
        kopf.event(body, type=event_type, reason=reason, message=message)
    if not raise_errors:
        return
    if outcome.next is Next.RETRY:
        raise kopf.TemporaryError(outcome.message, delay=outcome.delay)
    if outcome.next is Next.STALLED:
        raise kopf.PermanentError(outcome.message)
    if outcome.next is Next.UNEXPECTED and outcome.error is not None:
        raise outcome.error


def _record(uid: str, outcome: Outcome) -> None:
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in outcome.status.get("conditions", []))
    metrics.RECONCILES.labels("ready" if ready else outcome.next.value).inc()
    metrics.PHASES.set(uid, outcome.status.get("phase"))


def _reconcile_and_apply(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, *, from_timer: bool) -> None:
    ctx: Context = memo["ctx"]
    inflight: set[str] = memo["inflight"]
    parsed = _parse(body, ctx)
    if isinstance(parsed, Outcome):
        _apply(parsed, body, patch, raise_errors=not from_timer)
        return
    with ctx.lock_for(parsed.uid), metrics.RECONCILE_SECONDS.time():
        outcome = reconcile.reconcile(parsed, ctx)
        memo["reconciled_at"][parsed.uid] = time.monotonic()
    _record(parsed.uid, outcome)
    if not from_timer:
        # While a change handler keeps retrying, it owns the polling; the timer stays out.
        if outcome.next is Next.RETRY or outcome.next is Next.UNEXPECTED:
            inflight.add(parsed.uid)
        else:
            inflight.discard(parsed.uid)
    _apply(outcome, body, patch, raise_errors=not from_timer)


@kopf.on.resume(api.GROUP, api.VERSION, api.PLURAL)
@kopf.on.create(api.GROUP, api.VERSION, api.PLURAL)
@kopf.on.update(api.GROUP, api.VERSION, api.PLURAL, field="spec")
def reconcile_endpoint(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    _reconcile_and_apply(body, patch, memo, from_timer=False)


@kopf.timer(api.GROUP, api.VERSION, api.PLURAL, interval=SETTINGS.poll_interval, initial_delay=SETTINGS.poll_interval)
def resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Drift detection, and polling of transitions no change handler is watching (e.g. a recreate)."""
    meta = body["metadata"]
    status = body.get("status") or {}
    if meta.get("deletionTimestamp") or meta["uid"] in memo["inflight"]:
        return
    if status.get("observedGeneration") != meta.get("generation"):
        # This generation's change handler owns the resource, unless its event never came: a watch
        # restarted by the API server (a CRD change re-creates its storage) can lose one.
        last_look = memo["reconciled_at"].get(meta["uid"])
        if last_look is None or time.monotonic() - last_look < 2 * SETTINGS.poll_interval:
            return
    in_progress = status.get("phase") in (Phase.CREATING.value, Phase.UPDATING.value, Phase.PACKAGING.value) or any(
        c.get("type") == "Reconciling" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    due = SETTINGS.poll_interval if in_progress else SETTINGS.resync_interval
    last = memo["reconciled_at"].get(meta["uid"])
    if last is not None:
        # This process's own clock; the body may predate the status its last reconcile wrote.
        if time.monotonic() - last < due:
            return
    elif not in_progress and status.get("lastSyncTime"):
        ctx: Context = memo["ctx"]
        age = (ctx.clock() - reconcile.parse_timestamp(status["lastSyncTime"])).total_seconds()
        if age < due:
            return
    _reconcile_and_apply(body, patch, memo, from_timer=True)


def _lenient_target(body: kopf.Body) -> reconcile.DeletionTarget:
    """Where to look when the spec does not parse (an older, looser CRD or operator wrote it).

    Ownership still comes from the uid alone; these strings only say which
    region, endpoint name and artifact folder to search as well.
    """
    meta = body["metadata"]
    spec = api._plain(body.get("spec") or {})
    aws = spec.get("aws") if isinstance(spec.get("aws"), dict) else {}

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    namespace, name, uid = meta.get("namespace", "default"), meta["name"], meta.get("uid", "")
    region = text(aws.get("region")) or default_region()
    bucket = text(aws.get("artifactBucket"))
    location = None
    if bucket:
        try:
            location = (
                bucket,
                package.resource_prefix(text(aws.get("artifactPrefix")) or "djl-operator", namespace, name, uid),
            )
        except ValueError:
            location = None
    explicit = text(spec.get("endpointName"))
    return reconcile.DeletionTarget(
        uid=uid,
        namespace=namespace,
        name=name,
        region=region,
        retain=spec.get("deletionPolicy") == api.DeletionPolicy.RETAIN.value,
        endpoint_name=naming.endpoint_name(namespace, name, explicit),
        artifact_location=location,
    )


@kopf.on.delete(api.GROUP, api.VERSION, api.PLURAL)
def delete_endpoint(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    ctx: Context = memo["ctx"]
    uid = body["metadata"].get("uid", "")
    memo["inflight"].discard(uid)
    parsed = _parse(body, ctx)
    # A spec that no longer parses still owns what it created: clean up from the uid alone.
    target = _lenient_target(body) if isinstance(parsed, Outcome) else parsed
    generation = int(body["metadata"].get("generation") or 0)
    with ctx.lock_for(uid), metrics.RECONCILE_SECONDS.time():
        outcome = reconcile.finalize(target, ctx, generation=generation)
    _record(uid, outcome)
    if outcome.next is Next.DONE:
        ctx.forget(uid)
        memo["reconciled_at"].pop(uid, None)
        metrics.PHASES.set(uid, None)
    elif outcome.next is Next.STALLED:
        # Giving up would drop the finalizer and leak AWS resources: keep trying, slowly.
        outcome.next, outcome.delay = Next.RETRY, ctx.settings.access_denied_backoff
    _apply(outcome, body, patch)
