"""The one scheduling policy: when a resource is reconciled next, on a fake clock."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from djl_operator.events import Seen
from djl_operator.planner import Next
from djl_operator.schedule import Scheduler, Wakeups, backoff_delay
from djl_operator.settings import Settings

SETTINGS = Settings(poll_interval=30, resync_interval=300, transient_backoff=5, backoff_cap=120)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scheduler(rand: float = 1.0) -> tuple[Scheduler, Clock]:
    clock = Clock()
    return Scheduler(SETTINGS, clock=clock, rand=lambda: rand), clock


def stalled_status(generation: int) -> dict[str, object]:
    return {
        "observedGeneration": generation,
        "conditions": [{"type": "Stalled", "status": "True", "reason": "AwsRequestRejected"}],
    }


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    highs = [backoff_delay(SETTINGS, n, lambda: 1.0) for n in range(1, 9)]
    lows = [backoff_delay(SETTINGS, n, lambda: 0.0) for n in range(1, 9)]
    assert highs == [5, 10, 20, 40, 80, 120, 120, 120]
    assert lows == [h / 2 for h in highs]


def test_a_throttled_resource_backs_off_exponentially_then_resets() -> None:
    s, clock = scheduler()
    waits = [s.record("u", 1, Next.BACKOFF) for _ in range(7)]
    assert waits == [5, 10, 20, 40, 80, 120, 120]
    assert not s.due("u", 1, {})
    clock.now += 119.9
    assert not s.due("u", 1, {})
    clock.now += 0.1
    assert s.due("u", 1, {})
    assert s.record("u", 1, Next.POLL) == 30  # any progress resets the backoff
    assert s.record("u", 1, Next.BACKOFF) == 5


def test_calls_per_minute_under_a_full_storm_fall_to_the_cap() -> None:
    """With every call throttled, the looks of one resource in its 10th minute: 60 / cap at most."""
    s, clock = scheduler(rand=0.0)  # the shortest jitter: the most looks
    start, looks = clock.now, []
    while clock.now - start < 600:
        if s.due("u", 1, {}):
            looks.append(clock.now - start)
            s.record("u", 1, Next.BACKOFF)
        clock.now += 1
    late = [t for t in looks if t >= 540]
    assert len(late) <= 60 / (SETTINGS.backoff_cap / 2)
    assert len(looks) < 20  # a fixed 5 s delay would have made 120


def test_poll_retry_and_resync_waits() -> None:
    s, _ = scheduler()
    assert s.record("u", 1, Next.POLL, 30) == 30
    assert s.record("u", 1, Next.RETRY, 590) == 590
    assert s.record("u", 1, Next.DONE) == 300
    # By default a settled resource's own look is hours away: the batched status read looks in between.
    assert Settings().resync_interval == 6 * 3600 and Settings().status_read_interval == 300


def test_with_an_events_queue_a_transition_is_polled_rarely() -> None:
    events = Settings(poll_interval=30, events_queue_url="https://sqs.us-east-1.amazonaws.com/1/q")
    assert events.status_poll_interval == events.events_poll_interval == 300
    assert Scheduler(events).record("u", 1, Next.POLL) == 300
    assert Settings(poll_interval=30).status_poll_interval == 30  # without a queue, as before


@pytest.mark.parametrize(("index", "count"), [(-1, 3), (3, 3), (0, 0)])
def test_a_shard_outside_the_count_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="--shard-index must be within"):
        Settings(shard_index=index, shard_count=count)


def test_a_stalled_generation_is_never_due_until_the_spec_changes() -> None:
    s, clock = scheduler()
    s.record("u", 3, Next.STALLED)
    clock.now += 10**6
    assert not s.due("u", 3, stalled_status(3))
    assert s.stalled("u", 3, stalled_status(3))
    assert not s.stalled("u", 4, stalled_status(3))


def test_a_status_stalled_before_a_restart_is_not_reconciled() -> None:
    s, clock = scheduler()  # a new process: nothing recorded
    assert s.stalled("u", 2, stalled_status(2))
    clock.now += 10**6
    assert not s.due("u", 2, stalled_status(2))


def test_a_generation_whose_change_event_was_lost_is_due_after_two_polls() -> None:
    s, clock = scheduler()
    s.record("u", 1, Next.DONE)
    status = {"observedGeneration": 1}
    assert not s.due("u", 2, status)  # the change handler should come
    clock.now += 59
    assert not s.due("u", 2, status)
    clock.now += 1
    assert s.due("u", 2, status)


@pytest.mark.parametrize(
    ("status", "due_at_once"),
    [
        ({"observedGeneration": 1, "conditions": [{"type": "Reconciling", "status": "True"}]}, True),
        ({"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}, False),
    ],
)
def test_after_a_restart_changing_resources_are_polled_and_settled_ones_resynced(
    status: dict[str, object], due_at_once: bool
) -> None:
    s, clock = scheduler()
    assert s.due("u", 1, status) is due_at_once
    clock.now += 300
    assert s.due("u", 1, status)


def test_forget() -> None:
    s, _ = scheduler()
    s.record("u", 1, Next.STALLED)
    s.forget("u")
    assert not s.stalled("u", 1, {})


def test_each_new_reconcile_request_is_one_reconcile_now_even_when_stalled() -> None:
    s, _ = scheduler()
    s.record("u", 3, Next.STALLED)
    status = stalled_status(3)
    assert not s.due("u", 3, status)
    assert s.due("u", 3, status, requested="2026-11-26T08:00:00Z")
    s.record("u", 3, Next.STALLED)
    assert not s.due("u", 3, status, requested="2026-11-26T08:00:00Z")  # handled: once per value
    assert s.due("u", 3, status, requested="2026-11-26T08:05:00Z")


def test_a_request_handled_before_a_restart_is_not_repeated() -> None:
    s, _ = scheduler()  # a new process: status says which value the last one handled
    status = {**stalled_status(2), "lastHandledReconcileAt": "a"}
    assert not s.due("u", 2, status, requested="a")
    assert s.due("u", 2, status, requested="b")


def test_an_event_makes_a_waiting_resource_due_but_not_a_stalled_or_unknown_one() -> None:
    s, clock = scheduler()
    s.record("u", 1, Next.DONE)
    assert not s.due("u", 1, {})
    assert s.request("u")
    assert s.due("u", 1, {})
    s.record("u", 1, Next.POLL)
    clock.now += 1
    assert s.request("u") and s.due("u", 1, {})
    s.record("stalled", 1, Next.STALLED)
    assert not s.request("stalled")
    assert not s.due("stalled", 1, stalled_status(1))
    assert not s.request("unknown")


def test_an_event_during_a_reconcile_is_not_pushed_back_by_its_outcome() -> None:
    """The IN_SERVICE event can arrive while the reconcile that created the endpoint is still running:
    that reconcile's outcome (poll again in minutes) must not swallow it."""
    s, _ = scheduler()
    s.record("u", 1, Next.POLL, 0.0)
    assert s.due("u", 1, {})  # the tick starts a reconcile
    assert s.request("u")  # the event comes while it runs
    assert s.record("u", 1, Next.POLL, 300) == 0  # its outcome keeps the event's "now"
    assert s.due("u", 1, {})
    assert s.record("u", 1, Next.POLL, 300) == 300  # answered: the next outcome waits as usual
    assert not s.due("u", 1, {})
    s.request("u")
    assert s.due("u", 1, {})  # an event before the reconcile starts is answered by that reconcile
    assert s.record("u", 1, Next.DONE) == 300


def test_an_event_that_repeats_what_the_last_look_saw_is_no_news() -> None:
    """The Creating event of the operator's own CreateEndpoint arrives while (or after) the reconcile
    that created it looked at it again: no second reconcile for it. A newer change, a duplicate of
    one not seen yet, or an event without a time still is one."""
    t0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
    creating, in_service = Seen("Creating", t0), Seen("InService", t0 + dt.timedelta(seconds=5))
    s, _ = scheduler()
    s.record("u", 1, Next.POLL, 0.0)
    assert s.due("u", 1, {})  # the reconcile that creates the endpoint starts
    assert s.request("u", Seen("CREATING", t0))  # its Creating event comes while it runs
    assert s.record("u", 1, Next.POLL, 300, seen=creating) == 300  # it saw Creating at that time: no news
    assert not s.request("u", Seen("CREATING", t0))  # a duplicate later: still no news
    assert not s.request("u", Seen("CREATING", t0 - dt.timedelta(seconds=1)))  # an older state
    assert not s.due("u", 1, {})
    assert s.request("u", Seen("IN_SERVICE", in_service.last_modified))  # news
    assert s.due("u", 1, {})
    assert s.record("u", 1, Next.DONE, seen=in_service) == 300
    assert not s.request("u", Seen("CREATING", t0))  # out of order, after the newer state was seen
    assert not s.request("u", Seen("IN_SERVICE", in_service.last_modified))  # a duplicate
    assert s.request("u", Seen("UPDATING", in_service.last_modified))  # same time, another status: news
    s.record("u", 1, Next.DONE, seen=in_service)
    assert s.request("u", Seen("IN_SERVICE", None))  # no time to compare: news
    s.record("u", 1, Next.DONE, seen=Seen(None))  # no endpoint of ours seen: anything is news
    assert s.request("u", Seen("CREATING", t0))
    s.forget("u")
    assert "u" not in s._seen


def test_news_during_a_reconcile_that_its_look_did_not_cover_makes_it_look_again() -> None:
    t0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
    s, _ = scheduler()
    s.record("u", 1, Next.POLL, 0.0)
    assert s.due("u", 1, {})
    assert s.request("u", Seen("CREATING", t0))
    assert s.request("u", Seen("IN_SERVICE", t0 + dt.timedelta(seconds=1)))  # newer than its look
    assert s.record("u", 1, Next.POLL, 300, seen=Seen("Creating", t0)) == 0
    assert s.due("u", 1, {})
    assert s.request("u")  # news unknown (the batched read): always a look
    assert s.record("u", 1, Next.POLL, 300, seen=Seen("InService", t0 + dt.timedelta(seconds=1))) == 0


def test_an_accepted_generation_waits_for_its_status_write_to_be_read_back() -> None:
    """Reconciling is written before the first AWS call: the tick that the acceptance made due
    reconciles only once the body it sees says observedGeneration is this generation."""
    s, _ = scheduler()
    assert s.record("u", 2, Next.POLL, 0.0, accepted=True) == 0.0
    before_write = {"observedGeneration": 1}
    assert not s.due("u", 2, before_write)
    # The watch event's poke, or two polls if the write is lost.
    assert s.seconds_until_due("u", 2, before_write) == 60.0
    after_write = {"observedGeneration": 2}
    assert s.seconds_until_due("u", 2, after_write) == 0.0
    assert s.due("u", 2, after_write)
    assert s.due("u", 2, before_write)  # read back once is enough (a later body may lag)


def test_an_acceptance_whose_write_is_lost_is_accepted_again() -> None:
    """kopf gave up on the status write (a 422, the API server away for a minute): after two polls the
    generation counts as never accepted, so the tick (or the next watch event) accepts it anew."""
    s, clock = scheduler()
    s.record("u", 2, Next.POLL, 0.0, accepted=True)
    before_write = {"observedGeneration": 1}
    clock.now += 59
    assert s.recorded("u", 2) and not s.due("u", 2, before_write)
    assert s.seconds_until_due("u", 2, before_write) == 1.0
    clock.now += 1
    assert not s.recorded("u", 2)  # the tick's "unaccepted" path writes the acceptance again
    assert s.due("u", 2, before_write)
    s.record("u", 2, Next.POLL, 0.0, accepted=True)
    assert s.recorded("u", 2) and not s.due("u", 2, before_write)


def test_events_kept_between_two_looks_are_bounded() -> None:
    """A resource that cannot be looked at for a while (due, but its tick is busy) keeps at most a few
    events; beyond that they count as one "something changed", which is always news."""
    t0 = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    s, _ = scheduler()
    s.record("u", 1, Next.POLL, 0.0, seen=Seen("Creating", t0))
    for i in range(1000):
        assert s.request("u", Seen("IN_SERVICE", t0 + dt.timedelta(seconds=i + 1)))
    assert len(s._poked["u"]) <= 9 and None in s._poked["u"]
    assert s.record("u", 1, Next.POLL, 300, seen=Seen("InService", t0 + dt.timedelta(seconds=1000))) == 0


@pytest.mark.parametrize(
    ("setup", "status", "expected"),
    [
        ("poll", {}, 30.0),  # an AWS transition: the poll interval
        ("stalled", {}, float("inf")),  # only the spec (a poke) moves it
        ("none", stalled_status(1), float("inf")),  # stalled before this process started
        ("none", {"observedGeneration": 1}, 300.0),  # settled by an earlier process: the resync
        ("none", {"observedGeneration": 0}, 60.0),  # a generation whose change event was lost: two polls
    ],
)
def test_how_long_an_idle_tick_may_sleep(setup: str, status: dict[str, object], expected: float) -> None:
    s, clock = scheduler()
    if setup == "poll":
        s.record("u", 1, Next.POLL)
    elif setup == "stalled":
        s.record("u", 1, Next.STALLED)
    assert not s.due("u", 1, status)
    assert s.seconds_until_due("u", 1, status) == expected
    clock.now += 10  # the wait counts down (inf stays inf)
    assert s.seconds_until_due("u", 1, status) == expected - 10


def test_a_poke_ends_a_ticks_sleep_and_a_poke_before_the_sleep_is_not_lost() -> None:
    async def scenario() -> list[str]:
        wakeups, happened = Wakeups(), []
        never = asyncio.get_running_loop().create_future()

        async def tick(label: str, poke_first: bool) -> None:
            wakeups.clear("u")
            if poke_first:
                wakeups.poke("u")  # lands between the scheduler's answer and the sleep
            start = asyncio.get_running_loop().time()
            await wakeups.sleep("u", 30.0, never)
            happened.append(f"{label} {asyncio.get_running_loop().time() - start < 5}")

        await tick("early poke", poke_first=True)
        sleeper = asyncio.ensure_future(tick("poked from a thread", poke_first=False))
        await asyncio.sleep(0.01)
        await asyncio.get_running_loop().run_in_executor(None, wakeups.poke, "u")
        await sleeper
        stopper = asyncio.get_running_loop().create_future()
        stopping = asyncio.ensure_future(wakeups.sleep("u", 30.0, stopper))
        wakeups.clear("u")
        stopper.set_result(None)  # kopf stops the timer: the sleep ends too
        await asyncio.wait_for(stopping, 5)
        happened.append("stopped")
        return happened

    assert asyncio.run(scenario()) == ["early poke True", "poked from a thread True", "stopped"]


def test_an_older_generations_outcome_never_replaces_a_newer_acceptance() -> None:
    """A spec change accepted while the tick still reconciled the old generation: the old outcome
    landing afterwards must not push the new generation back to the lost-event wait."""
    s, _ = scheduler()
    s.record("u", 2, Next.POLL, 0.0, accepted=True)
    s.record("u", 1, Next.DONE)  # the in-flight reconcile of generation 1 ends
    assert s.due("u", 2, {"observedGeneration": 2})


@pytest.mark.parametrize(
    ("accepted", "before_write"),
    [
        (False, {}),  # created with the annotation: the create handler has not accepted it yet
        (True, {"observedGeneration": 1, "lastHandledReconcileAt": "a"}),  # a spec edit and a new value at once
    ],
)
def test_a_reconcile_request_waits_for_the_generations_acceptance(
    accepted: bool, before_write: dict[str, object]
) -> None:
    """The annotation asks to look again, not to skip Reconciling: the first AWS call for a
    generation still follows its acceptance's status write, read back."""
    s, _ = scheduler()
    generation = 2 if accepted else 1
    if accepted:
        s.record("u", generation, Next.POLL, 0.0, accepted=True)
    assert not s.due("u", generation, before_write, requested="b")
    if not accepted:
        s.record("u", generation, Next.POLL, 0.0, accepted=True)  # the create handler runs
        assert not s.due("u", generation, before_write, requested="b")
    after_write = {**before_write, "observedGeneration": generation}
    assert s.due("u", generation, after_write, requested="b")  # one reconcile answers both
    s.record("u", generation, Next.POLL, 30.0)
    assert not s.due("u", generation, after_write, requested="b")  # handled once


def test_what_the_scheduler_keeps_per_resource_does_not_grow_with_its_generations() -> None:
    """Each spec edit is first seen by the tick before its acceptance is recorded (the lost-event
    wait starts then): a resource edited thousands of times keeps one such start, not thousands."""
    s, clock = scheduler()
    for generation in range(1, 1001):
        assert not s.due("u", generation, {"observedGeneration": generation - 1})  # the watch event's look
        s.record("u", generation, Next.POLL, 0.0, accepted=True)
        clock.now += 1
    assert len(s._first_seen) == 1
    assert s.seconds_until_due("u", 1001, {"observedGeneration": 1000}) == 60.0
    s.forget("u")
    assert not s._first_seen
