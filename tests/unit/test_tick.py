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
from djl_operator.events import Seen
from djl_operator.handlers import EventFilter
from djl_operator.planner import Next
from djl_operator.reconcile import Context, Outcome
from djl_operator.schedule import Scheduler, Wakeups
from djl_operator.settings import Settings
from tests.plugins.operator import endpoint_manifest

UID = "6f1c-tick"


class Readers:
    """The two things the tick tells the events module: which endpoint a resource names, what it saw."""

    def __init__(self) -> None:
        self.index = self
        self.sweep = self

    def observe(self, uid: str, region: str, endpoint: str | None) -> None:
        pass

    def saw(self, uid: str, seen: Seen) -> None:
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
    raw["metadata"].update(namespace="ml", uid=UID, generation=generation)
    raw["status"] = {"observedGeneration": 1, "phase": "Updating", "endpointName": "ml-demo"}
    return raw


def _tick_once(
    body: kopf.Body, settings: Settings, scheduler: Scheduler, pool: concurrent.futures.ThreadPoolExecutor
) -> kopf.Patch:
    """One run of the real tick handler (it returns after one reconcile); the patch it leaves for kopf."""
    memo = kopf.Memo(
        ctx=Context(settings=settings, clients=None),  # type: ignore[arg-type]
        scheduler=scheduler,
        wakeups=Wakeups(),
        readers=Readers(),
        events=EventFilter(),
        pool=pool,
    )
    patch = kopf.Patch()

    async def run() -> None:
        await asyncio.wait_for(handlers.tick(body=body, patch=patch, memo=memo, stopped=NeverStopped()), 10)

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
