"""What this process keeps per resource is forgotten once the resource is gone, also when it went
without our finalizer's last call (someone removed the finalizer by hand, a forced delete)."""

from __future__ import annotations

import asyncio

import kopf

from djl_operator import handlers, metrics
from djl_operator.events import Seen
from djl_operator.planner import Next
from djl_operator.reconcile import Context
from djl_operator.schedule import Scheduler, Wakeups
from djl_operator.settings import Settings
from tests.plugins.operator import endpoint_manifest

UID = "6f1c-forget"


class Readers:
    def __init__(self) -> None:
        self.index = self
        self.forgotten: list[str] = []

    def forget(self, uid: str) -> None:
        self.forgotten.append(uid)


def test_a_resource_deleted_without_our_finalizers_last_call_is_forgotten() -> None:
    settings = Settings()
    memo = kopf.Memo(
        ctx=Context(settings=settings, clients=None),  # type: ignore[arg-type]
        scheduler=Scheduler(settings),
        wakeups=Wakeups(),
        readers=Readers(),
        events=handlers.EventFilter(),
    )
    memo["scheduler"].record(UID, 1, Next.STALLED, seen=Seen("InService"))
    memo["events"].fresh(UID, [("Warning", "InvalidSpec", "spec.model: bad")])
    metrics.PHASES.set(UID, "Failed")
    raw = endpoint_manifest("demo")
    raw["metadata"].update(namespace="ml", uid=UID, generation=1)

    async def deleted() -> None:
        memo["wakeups"].clear(UID)  # the tick slept on it
        await handlers.finalize_orphan(body=kopf.Body(raw), patch=kopf.Patch(), memo=memo, type="DELETED")

    asyncio.run(deleted())
    assert not memo["scheduler"].stalled(UID, 1, {})
    assert memo["events"].fresh(UID, [("Warning", "InvalidSpec", "spec.model: bad")])  # no longer a repeat
    assert UID not in memo["wakeups"]._flags
    assert memo["readers"].forgotten == [UID]  # the endpoint index
    assert memo["scheduler"].seen(UID) is None  # what the last look saw (the batched read asks the scheduler)
    assert UID not in metrics.PHASES._phases  # the phase gauge counts it no more
