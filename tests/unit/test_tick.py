"""The per-resource tick against kopf's live body: a spec change that lands while a reconcile of
the previous generation is queued or running (handlers.tick, with reconcile.reconcile replaced)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
from collections.abc import Callable
from typing import Any

import kopf
import pytest

from djl_operator import handlers, reconcile
from djl_operator.handlers import EventFilter
from djl_operator.planner import Next
from djl_operator.reconcile import Context, Outcome
from djl_operator.schedule import Scheduler, Wakeups
from djl_operator.settings import Settings
from tests.plugins.operator import endpoint_manifest

UID = "6f1c-tick"


class Readers:
    """What the tick tells the events module: which endpoint a resource names."""

    def __init__(self) -> None:
        self.index = self

    def observe(self, uid: str, region: str, endpoint: str | None) -> None:
        pass

    def forget(self, uid: str) -> None:
        pass


class NeverStopped:
    def __bool__(self) -> bool:
        return False

    def wait(self) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()


class Queued(concurrent.futures.ThreadPoolExecutor):
    """A busy pool: ``meanwhile`` runs after the tick handed its reconcile over, before it starts."""

    def __init__(self, meanwhile: Callable[[], None]) -> None:
        super().__init__(1)
        self.meanwhile = meanwhile

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        self.meanwhile()
        return super().submit(fn, *args, **kwargs)


def _raw(generation: int) -> dict[str, Any]:
    raw = endpoint_manifest("demo")
    raw["metadata"].update(
        namespace="ml", uid=UID, generation=generation, finalizers=[handlers.finalizer_name(handlers.SETTINGS)]
    )
    raw["status"] = {"observedGeneration": 1, "phase": "Updating", "endpointName": "ml-demo"}
    return raw


def _memo(settings: Settings, scheduler: Scheduler, pool: concurrent.futures.ThreadPoolExecutor) -> kopf.Memo:
    return kopf.Memo(
        ctx=Context(settings=settings, clients=None),  # type: ignore[arg-type]
        scheduler=scheduler,
        wakeups=Wakeups(),
        readers=Readers(),
        events=EventFilter(),
        pool=pool,
    )


def _tick_once(
    body: kopf.Body,
    settings: Settings,
    scheduler: Scheduler,
    pool: concurrent.futures.ThreadPoolExecutor,
    meanwhile: Callable[[kopf.Memo], Any] | None = None,
) -> kopf.Patch:
    """One run of the real tick handler (it returns after one reconcile); the patch it leaves for kopf.
    ``meanwhile(memo)``: a coroutine run beside the tick (watch events while it sleeps)."""
    memo = _memo(settings, scheduler, pool)
    patch = kopf.Patch()

    async def run() -> None:
        tick = handlers.tick(body=body, patch=patch, memo=memo, stopped=NeverStopped())
        if meanwhile is None:
            await asyncio.wait_for(tick, 10)
        else:
            await asyncio.wait_for(asyncio.gather(tick, meanwhile(memo)), 10)

    try:
        asyncio.run(run())
    finally:
        pool.shutdown()
    return patch


@pytest.mark.parametrize("edited", ["while queued", "while reconciling"])
def test_a_spec_edit_during_a_ticks_reconcile_neither_runs_early_nor_undoes_its_acceptance(
    edited: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generation 2 is accepted (observedGeneration 2, Reconciling) while the tick's reconcile of
    generation 1 waits for a pool thread or runs. That reconcile must be generation 1's, and its
    status (observedGeneration 1) must not be written over the acceptance: the tick waits for
    observedGeneration 2 to be read back before reconciling generation 2, so it would never come."""
    settings = Settings(poll_interval=30)
    scheduler = Scheduler(settings)
    body = kopf.Body(_raw(1))
    reconciled: list[int] = []

    def spec_edit() -> None:  # what kopf and the update handler do with the new generation's event
        body._replace_with(_raw(2))
        scheduler.record(UID, 2, Next.POLL, 0.0, accepted=True)

    def reconciling(resource: Any, ctx: Context) -> Outcome:
        reconciled.append(resource.generation)
        if edited == "while reconciling":
            spec_edit()
        status = {"observedGeneration": resource.generation, "phase": "InService"}
        return Outcome(copy.deepcopy(status), Next.DONE)

    monkeypatch.setattr(reconcile, "reconcile", reconciling)
    pool = Queued(spec_edit if edited == "while queued" else lambda: None)
    scheduler.record(UID, 1, Next.POLL, 0.0)  # generation 1 is due
    patch = _tick_once(body, settings, scheduler, pool)
    assert reconciled == [1]
    assert patch.get("status", {}).get("observedGeneration") in (None, 2)
    accepted = {"observedGeneration": 2}  # the acceptance's write, read back
    assert scheduler.due(UID, 2, {**accepted, **patch.get("status", {})})


def test_a_generation_whose_change_event_never_came_is_accepted_before_any_aws_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tick's safety net for a lost (or very late) change event writes the generation's
    acceptance first, like the update handler would: Reconciling precedes the first AWS call."""

    def no_aws(resource: Any, ctx: Context) -> Outcome:
        raise AssertionError(f"reconciled generation {resource.generation} before accepting it")

    monkeypatch.setattr(reconcile, "reconcile", no_aws)
    settings = Settings(poll_interval=30)
    now = [1000.0]
    scheduler = Scheduler(settings, clock=lambda: now[0])
    scheduler.record(UID, 1, Next.DONE)  # generation 1 settled
    raw = _raw(2)
    raw["spec"]["image"] = {"framework": "djl-lmi"}  # no deprecation notice to post
    body = kopf.Body(raw)
    stale = {"observedGeneration": 1}
    assert not scheduler.due(UID, 2, stale)  # the tick's look at the edit's watch event
    now[0] += 60  # two polls and the update handler never came
    pool = concurrent.futures.ThreadPoolExecutor(1)
    patch = _tick_once(body, settings, scheduler, pool)
    assert patch["status"]["observedGeneration"] == 2
    assert {c["type"]: c["status"] for c in patch["status"]["conditions"]}["Reconciling"] == "True"
    assert not scheduler.due(UID, 2, stale)  # and the reconcile waits for that write to be read back
    assert scheduler.due(UID, 2, {"observedGeneration": 2})


def test_no_aws_call_before_the_finalizer_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf adds its finalizer in a write of its own, which can land after the acceptance's status
    write: until the finalizer's watch event, a due resource is not reconciled (a delete in between
    would leave what it created billing)."""
    reconciled: list[list[str]] = []

    def reconciling(resource: Any, ctx: Context) -> Outcome:
        reconciled.append(list(body["metadata"].get("finalizers") or []))
        return Outcome({"observedGeneration": resource.generation, "phase": "InService"}, Next.DONE)

    monkeypatch.setattr(reconcile, "reconcile", reconciling)
    settings = Settings(poll_interval=30)
    scheduler = Scheduler(settings)
    raw = _raw(1)
    finalizers = raw["metadata"].pop("finalizers")
    body = kopf.Body(raw)
    scheduler.record(UID, 1, Next.POLL, 0.0)  # due at once

    async def finalizer_lands(memo: kopf.Memo) -> None:
        await asyncio.sleep(0.3)
        assert reconciled == []  # due all along, but no finalizer yet
        body._replace_with({**raw, "metadata": {**raw["metadata"], "finalizers": finalizers}})
        await handlers.wake(body=body, patch=kopf.Patch(), memo=memo, type="MODIFIED")

    _tick_once(body, settings, scheduler, concurrent.futures.ThreadPoolExecutor(1), finalizer_lands)
    assert reconciled == [finalizers]


def _wake(body: kopf.Body, memo: kopf.Memo, kind: str = "MODIFIED") -> kopf.Patch:
    patch = kopf.Patch()
    asyncio.run(handlers.wake(body=body, patch=patch, memo=memo, type=kind))
    return patch


def test_a_watch_event_with_a_new_generation_makes_the_tick_accept_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """No kopf change handler: the generation's number says it is new. The watch event makes it due at
    once (not after the wait for a lost change event) and writes nothing itself: the tick accepts it
    (Reconciling, observedGeneration), once, and only with the finalizer on. kopf stops timers while
    a replica is paused for a peer, so a paused replica writes nothing. A deleted resource: nothing."""

    def no_aws(resource: Any, ctx: Context) -> Outcome:
        raise AssertionError(f"reconciled generation {resource.generation} before accepting it")

    monkeypatch.setattr(reconcile, "reconcile", no_aws)
    settings = Settings(poll_interval=30)
    scheduler = Scheduler(settings)
    memo = _memo(settings, scheduler, concurrent.futures.ThreadPoolExecutor(1))
    raw = _raw(2)
    raw["spec"]["image"] = {"framework": "djl-lmi"}
    before = {"observedGeneration": 1}
    bare = {**raw, "metadata": {k: v for k, v in raw["metadata"].items() if k != "finalizers"}}
    assert not _wake(kopf.Body(bare), memo, "ADDED")  # kopf's cycle that adds the finalizer: nothing else
    assert not scheduler.due(UID, 2, before)
    assert not _wake(kopf.Body(raw), memo)  # the finalizer's event: no write from the watch event...
    assert scheduler.due(UID, 2, before)  # ...but due at once
    accepted = _tick_once(kopf.Body(raw), settings, scheduler, concurrent.futures.ThreadPoolExecutor(1))
    assert accepted["status"]["observedGeneration"] == 2
    assert {c["type"]: c["status"] for c in accepted["status"]["conditions"]}["Reconciling"] == "True"
    assert scheduler.recorded(UID, 2) and not scheduler.due(UID, 2, before)  # until the write is read back
    assert not _wake(kopf.Body(raw), memo)  # the next event of the same generation: nothing new
    assert not scheduler.due(UID, 2, before)
    upgraded = {**raw, "metadata": {**raw["metadata"], "annotations": {handlers.LEGACY_DIFF_BASE: "{}"}}}
    assert _wake(kopf.Body(upgraded), memo) == {"metadata": {"annotations": {handlers.LEGACY_DIFF_BASE: None}}}
    deleting = {**raw, "metadata": {**raw["metadata"], "generation": 3, "deletionTimestamp": "2026-11-26T00:00:00Z"}}
    assert not _wake(kopf.Body(deleting), memo)
    assert not _wake(kopf.Body({**raw, "metadata": {**raw["metadata"], "generation": 3}}), memo, "DELETED")
    assert not scheduler.due(UID, 3, {"observedGeneration": 2})


def test_the_first_event_after_a_restart_makes_a_reconciled_resource_due_at_once() -> None:
    settings = Settings(poll_interval=30, resync_interval=3600)
    scheduler = Scheduler(settings)
    memo = _memo(settings, scheduler, concurrent.futures.ThreadPoolExecutor(1))
    settled = _raw(1)
    settled["status"] = {"observedGeneration": 1, "phase": "InService"}
    assert not _wake(kopf.Body(settled), memo, "ADDED")  # no write
    assert scheduler.due(UID, 1, settled["status"])  # and a look at once, not after the resync
    stalled = _raw(1)
    stalled["metadata"]["uid"] = "stalled-uid"
    stalled["status"] = {
        "observedGeneration": 1,
        "conditions": [{"type": "Stalled", "status": "True", "reason": "InvalidSpec"}],
    }
    assert not _wake(kopf.Body(stalled), memo, "ADDED")
    assert not scheduler.recorded("stalled-uid", 1) and not scheduler.due("stalled-uid", 1, stalled["status"])


def test_a_reconcile_queued_before_a_delete_does_not_run_after_the_finalizer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tick hands a due reconcile to a busy pool; the resource is deleted and its finalizer runs
    first and finds nothing to delete. The queued reconcile must not create things afterwards (they
    would bill with no finalizer left to remove them)."""
    ran: list[str] = []

    def reconciling(resource: Any, ctx: Context) -> Outcome:
        ran.append("reconcile")
        return Outcome({"observedGeneration": resource.generation}, Next.POLL, delay=30.0)

    def finalizing(target: Any, ctx: Context, *, generation: int = 0) -> Outcome:
        ran.append("finalize")
        return Outcome({"phase": "Deleting"}, Next.DONE)

    monkeypatch.setattr(reconcile, "reconcile", reconciling)
    monkeypatch.setattr(reconcile, "finalize", finalizing)
    settings = Settings(poll_interval=30)
    scheduler = Scheduler(settings)
    body = kopf.Body(_raw(1))
    deleted = _raw(1)
    deleted["metadata"]["deletionTimestamp"] = "2026-11-26T00:00:00Z"
    memos: list[kopf.Memo] = []

    def delete_meanwhile() -> None:
        handlers._finalize_once(kopf.Body(deleted), kopf.Patch(), memos[0])

    pool = Queued(delete_meanwhile)
    memos.append(_memo(settings, scheduler, pool))
    scheduler.record(UID, 1, Next.POLL, 0.0)
    patch = kopf.Patch()

    async def run() -> None:
        await asyncio.wait_for(handlers.tick(body=body, patch=patch, memo=memos[0], stopped=NeverStopped()), 10)

    try:
        asyncio.run(run())
    finally:
        pool.shutdown()
    assert ran == ["finalize"]
    assert "status" not in patch
