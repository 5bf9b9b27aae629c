"""kopf handlers: parse the body, call one service function, write status.

One trigger path: every reconcile runs in the per-resource ``tick``, when the
:class:`Scheduler` says the resource is due (poll, retry, backoff, resync, a lost
change event). Between looks the tick sleeps until the resource is due or is poked
(:class:`~djl_operator.schedule.Wakeups`: every watch event of the resource, an endpoint
event, a changed entry of the batched status read), so an idle resource costs no CPU.
A new generation (a create, a spec update: the watch event's ``metadata.generation``) makes
the resource due at once; the tick first only accepts it (once kopf's finalizer is on), writing
Reconciling before any AWS call (kopf keeps no diff-base annotation: no change handler reads
it), and the resource is due again once that write is read back; the first sight of a
resource after a restart makes it due at once.
No handler raises to make kopf retry it:
waiting is not an error, and the scheduling policy lives in
:mod:`djl_operator.schedule` alone. Only the finalizer lets kopf call it again (it
must run until the AWS side is gone); the per-resource lock keeps it apart from a
tick's reconcile still in flight when the delete came.

What makes a settled or waiting resource due early comes from :mod:`djl_operator.events`
(endpoint state-change events, the batched status read), again through the scheduler. With
``--shard-count n`` every handler serves only the resources of this replica's shard (but for
keeping this replica's finalizer on a resource that a reshard moved away until its new shard's is
on: :mod:`djl_operator.sharding`).

Handlers are synchronous or hand the blocking boto3 calls to a thread pool, so
they never block the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime
import functools
import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

import aiohttp
import kopf
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from djl_operator import api, kube_secrets, metrics, naming, reconcile, sharding
from djl_operator.api import DjlEndpointResource
from djl_operator.artifacts import package
from djl_operator.aws_clients import AwsClients, default_region
from djl_operator.events import Seen, StatusReaders
from djl_operator.reconcile import Context, Next, Outcome
from djl_operator.schedule import Scheduler, Wakeups
from djl_operator.settings import Settings

SETTINGS = Settings.from_env()  # the tick interval must be known when the module is imported
ANNOTATION_PREFIX = "djl-operator.io"
# Each new value asks for one reconcile at once (Crossplane's and Flux's convention); the value
# handled last is written to status.lastHandledReconcileAt.
RECONCILE_REQUESTED_AT = f"{ANNOTATION_PREFIX}/reconcile-requested-at"
# kopf's diff-base, which operator versions before the watch event accepted generations kept.
LEGACY_DIFF_BASE = f"{ANNOTATION_PREFIX}/last-handled-configuration"
# kopf calls the tick again this long after it returns (it returns after each reconcile, or after
# IDLE_SECONDS of sleeping with nothing due).
TICK_SECONDS = 0.1
# The longest a tick sleeps without asking the scheduler: only a lost poke would need it, and it
# bounds the cost of an idle resource to one kopf timer call per minute.
IDLE_SECONDS = 60.0

log = logging.getLogger(__name__)
T = TypeVar("T")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = finalizer_name(SETTINGS)
    # Keep kopf's bookkeeping out of .status (which users and Argo CD read).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    # No kopf change handlers: a new generation is noticed by its number (``wake``), so kopf need not
    # keep the last handled spec in an annotation (one write per change, and up to 256 KiB).
    settings.persistence.diffbase_storage = NoDiffBase()
    # We post our own, meaningful events (kopf.event ignores this level); kopf's per-handler ones are noise.
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = SETTINGS.workers
    # (The peering name is `djl-operator run --peering`'s, which kopf.run sets: one per shard.)
    if "ctx" not in memo:  # tests may inject a context of their own
        memo["ctx"] = Context(settings=SETTINGS, clients=AwsClients())
    memo.setdefault("scheduler", Scheduler(memo["ctx"].settings))
    memo.setdefault("wakeups", Wakeups())
    if "readers" not in memo:
        memo["readers"] = StatusReaders(
            memo["ctx"].settings, memo["ctx"].clients, _requester(memo), memo["scheduler"].seen
        )
        memo["readers"].start()
    memo.setdefault("events", EventFilter())
    memo.setdefault("pool", concurrent.futures.ThreadPoolExecutor(SETTINGS.workers, thread_name_prefix="reconcile"))


@kopf.on.login()
async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
    """kopf's own logins (in a pod, else the kubeconfig); the Secret reader (tokenSecretRef) uses the same.

    kopf's own session opens as many connections as requests in flight (a thousand new resources:
    a thousand TLS connections at once); this one is kopf's, with at most ``api_connections``."""
    connection = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
    if connection is None:
        return None
    kube_secrets.use(connection)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # as kopf itself does for this call
        auth = connection.as_aiohttp_basic_auth()
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=SETTINGS.api_connections, ssl=connection.as_ssl_context()),
        headers=connection.as_http_headers(),
        auth=auth,
        proxy=connection.proxy_url,
        trust_env=connection.trust_env,
    )
    return kopf.AiohttpSession(
        server=connection.server,
        default_namespace=connection.default_namespace,
        priority=connection.priority,
        expiration=connection.expiration,
        aiohttp_session=session,
    )


@kopf.on.cleanup()
def stop_copies(memo: kopf.Memo, **_: Any) -> None:
    """Snapshot copies stop at their next part; the next process resumes them."""
    ctx: Context = memo["ctx"]
    ctx.copies.shutdown()


@kopf.on.cleanup()
def stop_readers(memo: kopf.Memo, **_: Any) -> None:
    if "readers" in memo:
        memo["readers"].close()


def _requester(memo: kopf.Memo) -> Any:
    """What endpoint events and the batched read call: make the resource due and wake its tick."""
    scheduler: Scheduler = memo["scheduler"]
    wakeups: Wakeups = memo["wakeups"]

    def request(uid: str, news: Seen | None = None) -> bool:
        if not scheduler.request(uid, news):
            return False
        wakeups.poke(uid)
        return True

    return request


def finalizer_name(settings: Settings) -> str:
    """Each shard its own finalizer: kopf removes its finalizer from every resource none of its
    delete handlers serves, so with a shared name each shard would strip the others' and let their
    resources go without cleanup."""
    return sharding.finalizer_name(settings.shard_index, settings.shard_count)


def in_shard(body: kopf.Body, **_: Any) -> bool:
    """Whether this replica serves the resource (always, with one shard)."""
    return (
        SETTINGS.shard_count == 1
        or sharding.shard_of(body["metadata"]["uid"], SETTINGS.shard_count) == SETTINGS.shard_index
    )


def _adoption(body: kopf.Body) -> sharding.Adoption:
    meta = body["metadata"]
    shard = sharding.shard_of(meta["uid"], SETTINGS.shard_count)
    return sharding.adoption(meta.get("finalizers") or [], shard, SETTINGS.shard_index, SETTINGS.shard_count)


def _drop_stale(body: Any, *, orphaned: bool = False) -> None:
    sharding.drop_stale(body, SETTINGS.shard_index, SETTINGS.shard_count, orphaned=orphaned)


def _adopt(body: kopf.Body, patch: kopf.Patch) -> None:
    """After a reshard: remove the previous shards' finalizers of ours from a resource this replica
    serves, now that its own is on (kopf applies the function to the freshest body, after its own
    finalizer changes, tested against the resourceVersion)."""
    if _adoption(body).remove:
        patch.fns.append(_drop_stale)


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


class EventFilter:
    """Events on transitions only: an event identical to the last one posted for the resource is a repeat.

    A retry that plans the same step again (a create after a throttled attempt, a denial
    retried every few minutes) would post the same event again; a real transition in
    between (InService, then a second out-of-band delete) posts it anew.
    """

    def __init__(self) -> None:
        self._last: dict[str, tuple[str, str, str]] = {}
        self._guard = threading.Lock()

    def fresh(self, uid: str, events: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        with self._guard:
            posted = []
            for event in events:
                if self._last.get(uid) != event:
                    posted.append(event)
                    self._last[uid] = event
            return posted

    def forget(self, uid: str) -> None:
        with self._guard:
            self._last.pop(uid, None)


def _apply(outcome: Outcome, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
    patch.status.update(outcome.status)
    events: EventFilter = memo["events"]
    meta = body["metadata"]
    for event_type, reason, message in events.fresh(meta.get("uid", ""), outcome.events):
        kopf.event(body, type=event_type, reason=reason, message=message)
        # The log tells the same transitions, once each (a Warning event is not an operator error).
        level = logging.WARNING if event_type == "Warning" else logging.INFO
        log.log(level, "%s/%s %s: %s", meta.get("namespace"), meta["name"], reason, message)


def _record(uid: str, outcome: Outcome) -> None:
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in outcome.status.get("conditions", []))
    metrics.RECONCILES.labels("ready" if ready else outcome.next.value).inc()
    metrics.PHASES.set(uid, outcome.status.get("phase"))


def _reconcile_requested_at(meta: Any) -> str | None:
    """The reconcile-requested-at annotation, if it can be recorded in status (at most 256 characters)."""
    value = (meta.get("annotations") or {}).get(RECONCILE_REQUESTED_AT)
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


def _reconcile_once(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, *, new_generation: bool = False) -> None:
    """Reconcile (or, for a new generation, accept it), write status and events, and schedule the next look."""
    ctx: Context = memo["ctx"]
    scheduler: Scheduler = memo["scheduler"]
    meta = body["metadata"]
    uid, generation = meta["uid"], int(meta.get("generation") or 0)
    finalizing: set[str] = memo.setdefault("finalizing", set())
    parsed = _parse(body, ctx)
    if uid in finalizing:
        return  # deleted while this waited for a pool thread: the finalizer owns it now
    if isinstance(parsed, Outcome):
        outcome = parsed
    elif new_generation:
        outcome = reconcile.accept(parsed, ctx)  # no AWS call: the tick reconciles right after this write
    else:
        with ctx.lock_for(uid), metrics.RECONCILE_SECONDS.time():
            if uid in finalizing:  # the finalizer ran first (and may have found nothing left to delete)
                return
            outcome = reconcile.reconcile(parsed, ctx)
        _record(uid, outcome)
    seen = Seen(*outcome.seen) if outcome.seen is not None else None
    endpoint = outcome.status.get("endpointName")
    if endpoint and not isinstance(parsed, Outcome):
        # Index the name as soon as it is known (accepting a generation names it), so an event for an
        # endpoint created moments later finds its resource without waiting for the tick to read status.
        memo["readers"].index.observe(uid, parsed.spec.aws.region, endpoint)
    wait = scheduler.record(uid, generation, outcome.next, outcome.delay, accepted=new_generation, seen=seen)
    requested = _reconcile_requested_at(meta)
    if requested is not None and not new_generation:
        outcome.status["lastHandledReconcileAt"] = requested
    if outcome.next is Next.UNEXPECTED and outcome.error is not None:
        # A bug, not a wait: the one kind of outcome logged as an error.
        log.error(
            "reconcile of %s/%s failed unexpectedly; retrying in %.0fs",
            meta.get("namespace"),
            meta["name"],
            wait,
            exc_info=outcome.error,
        )
    elif outcome.next is Next.BACKOFF:
        log.info("%s/%s: %s; retrying in %.0fs", meta.get("namespace"), meta["name"], outcome.message, wait)
    _apply(outcome, body, patch, memo)


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's diff-base, not kept: with no create/update handlers nothing reads it.

    Every body's essence is the same empty one, so kopf sees no change (NOOP) in any event and
    copies no body for it (it deep-copies an essence several times per watch event). A missing
    base would make every event a creation, which kopf logs with a repr of the whole body."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return cast(kopf.BodyEssence, {})

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


def _holds_finalizer(meta: Any) -> bool:
    """Nothing is accepted or reconciled before this replica's finalizer is on (kopf adds it in a
    write of its own): a deletion could otherwise leave what a reconcile created billing."""
    return finalizer_name(SETTINGS) in (meta.get("finalizers") or [])


def _notice(body: kopf.Body, memo: kopf.Memo) -> None:
    """What a watch event of a live resource that carries this replica's finalizer may start:
    accepting a new generation at once (in the tick: Reconciling written before any AWS call), or,
    at the first sight of a resource after a restart, a look at once. A stalled generation stays."""
    meta = body["metadata"]
    uid, generation = meta["uid"], int(meta.get("generation") or 0)
    status = dict(body.get("status") or {})
    scheduler: Scheduler = memo["scheduler"]
    if not _holds_finalizer(meta):
        # kopf's first cycle of a new resource adds the finalizer; its watch event comes next. (A
        # replica that paused for a peer meanwhile sees no further event: it writes nothing more.)
        return
    if scheduler.recorded(uid, generation) or scheduler.stalled(uid, generation, status):
        return
    if status.get("observedGeneration") == generation:
        scheduler.record(uid, generation, Next.POLL, 0.0)  # reconciled by an earlier process: look at once
        return
    # The tick accepts it (at once): kopf stops timers while this replica is paused for a peer, also
    # for events a watch delivers after the pause began, so a paused replica writes nothing.
    scheduler.notice(uid, generation)


async def _in_pool(memo: kopf.Memo, call: Callable[[], T]) -> T:
    """``call`` on the reconcile pool, off the event loop, in kopf's context (kopf.event reads its
    settings from context variables)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(memo["pool"], context.run, call)


@kopf.on.event(api.GROUP, api.VERSION, api.PLURAL, when=in_shard)
async def wake(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, type: str | None = None, **_: Any) -> None:
    """Every watch event of a resource: a new generation is accepted (its number says so: a spec
    change bumps it, nothing else does), and the tick wakes to ask the scheduler again (the
    read-back of an acceptance's write, our finalizer on, a new reconcile-requested-at value, a
    status someone else changed)."""
    if type != "DELETED" and not body["metadata"].get("deletionTimestamp"):
        _notice(body, memo)
        if LEGACY_DIFF_BASE in (body["metadata"].get("annotations") or {}):
            patch.meta.annotations[LEGACY_DIFF_BASE] = None  # an earlier version's, up to 256 KiB: gone once
    memo["wakeups"].poke(body["metadata"]["uid"])
    # And adopts it after a reshard, at the event that brings this replica's finalizer or (during a
    # rollout) an old replica's back: no handler but this one sees a change of finalizers alone.
    _adopt(body, patch)


@kopf.timer(api.GROUP, api.VERSION, api.PLURAL, interval=TICK_SECONDS, initial_delay=TICK_SECONDS, when=in_shard)
async def tick(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any) -> None:
    """Polling, retries, backoff, drift resync and lost change events: whatever the scheduler says is
    due. Sleeps until then (or until poked; at most IDLE_SECONDS), reconciles once, and returns so that
    kopf writes the status; kopf calls it again TICK_SECONDS later. The body is kopf's live view."""
    scheduler: Scheduler = memo["scheduler"]
    wakeups: Wakeups = memo["wakeups"]
    stopped = kwargs["stopped"]  # kopf's flag for a timer it stops (deletion, exit)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + IDLE_SECONDS
    while True:
        meta = body["metadata"]
        if stopped or meta.get("deletionTimestamp"):
            return
        uid, generation = meta["uid"], int(meta.get("generation") or 0)
        # Which endpoint this resource's status names, so its events find it (a hint, never a proof).
        status_now = dict(body.get("status") or {})
        spec_aws = (body.get("spec") or {}).get("aws") or {}
        memo["readers"].index.observe(uid, spec_aws.get("region") or default_region(), status_now.get("endpointName"))
        wakeups.clear(uid)  # before asking: a poke from here on ends the sleep below
        holds = _holds_finalizer(meta)  # else only the finalizer's watch event can make it due
        if holds and scheduler.due(uid, generation, status_now, _reconcile_requested_at(meta)):
            break
        until = scheduler.seconds_until_due(uid, generation, status_now) if holds else float("inf")
        sleep = min(until, give_up - loop.time())
        if sleep <= 0:
            return
        await wakeups.sleep(uid, sleep, stopped.wait())
    # The generation found due, as it is now: kopf replaces the live body at each watch event, also
    # while the reconcile waits for a pool thread (a spec edit must not be reconciled unaccepted).
    due_body = kopf.Body(cast(kopf.RawBody, dict(body)))
    # A generation no watch event of this process accepted (its event lost, or late): accept it
    # here first, as that handler would, so that Reconciling is written before any AWS call.
    unaccepted = status_now.get("observedGeneration") != generation and not scheduler.recorded(uid, generation)
    await _in_pool(memo, functools.partial(_reconcile_once, due_body, patch, memo, new_generation=unaccepted))
    if int(body["metadata"].get("generation") or 0) != generation:
        # A newer generation came meanwhile and is (or is about to be) accepted: this older status
        # must not overwrite its observedGeneration and Reconciling, which its reconcile waits to read.
        patch.pop("status", None)


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


def _finalize_once(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> Outcome:
    """One look at deleting the AWS side (from the uid alone if the spec no longer parses), status
    and events written; once all is gone, this process forgets the resource."""
    ctx: Context = memo["ctx"]
    uid = body["metadata"].get("uid", "")
    # From now on no reconcile of it runs (one queued before the delete would create things again,
    # after this finalizer found nothing left): until its DELETED event, whatever this call decides.
    memo.setdefault("finalizing", set()).add(uid)
    parsed = _parse(body, ctx)
    # A spec that no longer parses still owns what it created: clean up from the uid alone.
    target = _lenient_target(body) if isinstance(parsed, Outcome) else parsed
    generation = int(body["metadata"].get("generation") or 0)
    with ctx.lock_for(uid), metrics.RECONCILE_SECONDS.time():
        outcome = reconcile.finalize(target, ctx, generation=generation)
    _record(uid, outcome)
    _apply(outcome, body, patch, memo)
    if outcome.next is Next.DONE:
        _forget(uid, memo)
    return outcome


def _forget(uid: str, memo: kopf.Memo) -> None:
    memo["ctx"].forget(uid)
    memo["scheduler"].forget(uid)
    memo["wakeups"].forget(uid)
    memo["events"].forget(uid)
    memo["readers"].index.forget(uid)
    metrics.PHASES.set(uid, None)


def _finalize_delay(outcome: Outcome, ctx: Context) -> float:
    return {
        Next.POLL: outcome.delay or ctx.settings.poll_interval,
        Next.RETRY: outcome.delay or ctx.settings.access_denied_backoff,
    }.get(outcome.next, ctx.settings.transient_backoff)


@kopf.on.delete(api.GROUP, api.VERSION, api.PLURAL, when=in_shard)
def delete_endpoint(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    _adopt(body, patch)
    outcome = _finalize_once(body, patch, memo)
    if outcome.next is Next.DONE:
        return
    # The finalizer runs until the AWS side is gone (finalize() never stalls): kopf calls it again.
    raise kopf.TemporaryError(outcome.message, delay=_finalize_delay(outcome, memo["ctx"]))


# -- resharding: see djl_operator.sharding ---------------------------------------------------------

ORPHAN_RETRY_ANNOTATION = f"{ANNOTATION_PREFIX}/finalizing-orphan-at"


def holds_for_owner(body: kopf.Body, **_: Any) -> bool:
    return SETTINGS.shard_count > 1 and _adoption(body).hold


@kopf.on.delete(api.GROUP, api.VERSION, api.PLURAL, when=holds_for_owner)
def wait_for_owner(body: kopf.Body, **_: Any) -> None:
    """Another shard's resource, deleted while it still carries this replica's finalizer (from before
    a reshard) and not yet its owner's: the owner finalizes it and removes this finalizer; until then
    this one stays (kopf would drop it as unserved and let the resource go without cleanup)."""
    owner = sharding.shard_of(body["metadata"]["uid"], SETTINGS.shard_count)
    raise kopf.TemporaryError(f"shard {owner} finalizes this resource", delay=SETTINGS.poll_interval)


def orphaned_deletion(body: kopf.Body, type: str | None = None, **_: Any) -> bool:
    meta = body.get("metadata") or {}
    if not in_shard(body):
        return False
    return type == "DELETED" or bool(meta.get("deletionTimestamp") and _adoption(body).orphaned)


@kopf.on.event(api.GROUP, api.VERSION, api.PLURAL, when=orphaned_deletion)
async def finalize_orphan(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, type: str | None, **_: Any) -> None:
    """A resource of this shard deleted before this replica's finalizer got on (deleted around a
    reshard): only an older shard's finalizer of ours holds it, so kopf calls no delete handler here.
    Finalize it all the same and, once the AWS side is gone, remove those finalizers; until then look
    again after the finalizer's delay (the annotation written then brings the next event)."""
    done: set[str] = memo.setdefault("orphans_finalized", set())
    uid = body["metadata"]["uid"]
    if type == "DELETED":
        done.discard(uid)
        memo.setdefault("finalizing", set()).discard(uid)
        # Gone, also when our finalizer's last call never came (removed by hand, a forced delete):
        # nothing of it stays in memory or in the phase gauge.
        _forget(uid, memo)
        return
    if uid not in done:  # events queued meanwhile must not finalize (and post Deleted) again
        outcome = await _in_pool(memo, functools.partial(_finalize_once, body, patch, memo))
        if outcome.next is not Next.DONE:
            await asyncio.sleep(_finalize_delay(outcome, memo["ctx"]))
            patch.meta.annotations[ORPHAN_RETRY_ANNOTATION] = datetime.datetime.now(datetime.UTC).isoformat()
            return
        done.add(uid)
    # kopf keeps a function it could not apply (a newer resourceVersion) for its next look at the resource.
    patch.fns.append(functools.partial(_drop_stale, orphaned=True))
