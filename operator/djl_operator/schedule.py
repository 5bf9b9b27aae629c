"""When to reconcile a resource next: the operator's one scheduling policy.

The watch-event handler (a new generation, the first sight after a restart) makes a resource due at once; its
tick asks :meth:`Scheduler.due` and reconciles only when the last outcome's wait
is over. Between looks the tick sleeps (:class:`Wakeups`) until the resource is
due or something pokes it (a watch event, an endpoint event, a request), so an idle
resource costs nothing. Waiting is not an error: nothing here raises, and kopf never
retries a handler of ours. The policy:

- ``Next.POLL``: look again after the poll interval (an AWS transition is in progress);
- ``Next.RETRY``: after the delay the outcome names (a capacity backoff, a denial);
- ``Next.BACKOFF`` / ``Next.UNEXPECTED``: exponential per resource, with jitter, capped;
- ``Next.DONE``: after the resync interval (hours: the batched status read looks for drift in between);
- ``Next.STALLED``: never, until the generation changes: a stalled resource makes no AWS call;
- a generation the process never reconciled (its change event was lost) after two poll intervals
  (the tick then accepts it first, as the watch-event handler would);
- at once, whatever the above says, for a new value of the reconcile-requested-at annotation
  (:meth:`Scheduler.due`'s ``requested``) and, unless stalled, for :meth:`Scheduler.request`
  (an endpoint state-change event, a changed entry in the batched status read).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from djl_operator.events import Seen
from djl_operator.planner import Next
from djl_operator.settings import Settings

# The most events kept per resource between two looks (beyond it they count as one with unknown news).
_MAX_POKES = 8


@dataclass
class _Entry:
    due: float  # time.monotonic() of the next look
    generation: int  # the generation the last reconcile saw
    next: Next
    failures: int = 0  # consecutive BACKOFF/UNEXPECTED outcomes
    # Accepted, its Reconciling status not yet read back: the first AWS call waits for that write
    # until ``accept_by`` (time.monotonic()); a write not read back by then is taken as lost.
    awaiting_write: bool = False
    accept_by: float = 0.0


def backoff_delay(settings: Settings, failures: int, rand: Callable[[], float] = random.random) -> float:
    """The wait after ``failures`` consecutive transient failures: ``base * 2**(n-1)``, capped, with jitter.

    The jitter keeps the upper half ("equal jitter"): never less than half the step, so a storm
    still backs off, and resources that failed together do not retry together.
    """
    step = min(settings.backoff_cap, settings.transient_backoff * 2.0 ** max(0, failures - 1))
    return step / 2 + rand() * step / 2


class Scheduler:
    """Per-resource next-look times; thread-safe (handlers run in kopf's thread pool)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.rand = rand
        self._entries: dict[str, _Entry] = {}
        # When this process first saw the newest generation no reconcile recorded (one per resource).
        self._first_seen: dict[str, tuple[int, float]] = {}
        # The last reconcile-requested-at value each resource was reconciled for (after a restart,
        # status.lastHandledReconcileAt says it).
        self._requested: dict[str, str] = {}
        # Requests that came while the resource was being reconciled: the outcome's record() must not
        # push them back behind its wait (the event may say what that reconcile could not yet see),
        # unless what it saw covers them all. Each is an event's news, or None (news unknown).
        self._poked: dict[str, list[Seen | None]] = {}
        # What the last reconcile of each resource saw of its endpoint (an event it covers is no news).
        self._seen: dict[str, Seen] = {}
        self._guard = threading.Lock()

    def record(
        self,
        uid: str,
        generation: int,
        next_step: Next,
        delay: float | None = None,
        *,
        accepted: bool = False,
        seen: Seen | None = None,
    ) -> float:
        """Remember a reconcile's outcome; the seconds until the resource is due again (inf: stalled).

        ``accepted``: the outcome of accepting a new generation, whose status write (Reconciling,
        observedGeneration) must be read back before the first AWS call for it. ``seen``: what the
        reconcile saw of the endpoint last (None: it did not look)."""
        with self._guard:
            if seen is not None:
                self._seen[uid] = seen
            previous = self._entries.get(uid)
            if previous is not None and previous.generation > generation:
                # A reconcile of an older generation finished after the new one was accepted: stale.
                return max(0.0, previous.due - self.clock())
            failures = previous.failures if previous is not None and previous.generation == generation else 0
            if next_step in (Next.BACKOFF, Next.UNEXPECTED):
                failures += 1
                wait = backoff_delay(self.settings, failures, self.rand)
            else:
                failures = 0
                wait = {
                    Next.POLL: self.settings.status_poll_interval if delay is None else delay,
                    Next.RETRY: self.settings.status_poll_interval if delay is None else delay,
                    Next.DONE: self.settings.resync_interval,
                    Next.STALLED: float("inf"),
                }[next_step]
            if self._news(self._poked.pop(uid, []), self._seen.get(uid)) and next_step is not Next.STALLED:
                wait = 0.0  # an event came during this reconcile with news it may not have seen: look again at once
            now = self.clock()
            self._entries[uid] = _Entry(now + wait, generation, next_step, failures, accepted, now + self._lost_after())
            return wait

    def request(self, uid: str, news: Seen | None = None) -> bool:
        """Make a resource this process reconciles due at once (an event says its endpoint changed).

        A stalled resource stays stalled: only its spec (or the annotation) moves it. False when
        the resource is not known here yet (its first tick looks anyway), is stalled, or ``news``
        (an event's) is what its last reconcile saw already or older (its own create's Creating,
        a duplicate, one that arrives after a newer state was seen)."""
        with self._guard:
            entry = self._entries.get(uid)
            if entry is None or entry.next is Next.STALLED:
                return False
            if not self._news([news], self._seen.get(uid)):
                return False
            entry.due = min(entry.due, self.clock())
            pokes = self._poked.setdefault(uid, [])
            if len(pokes) >= _MAX_POKES:
                pokes[:] = [None]  # many events before a look: "something changed" says it all
            pokes.append(news)
            return True

    @staticmethod
    def _news(pokes: list[Seen | None], seen: Seen | None) -> bool:
        """Whether any of ``pokes`` may say something ``seen`` does not (a poke without news may)."""
        return any(poke is None or seen is None or not seen.covers(poke) for poke in pokes)

    def due(self, uid: str, generation: int, status: dict[str, object], requested: str | None = None) -> bool:
        found = self._due(uid, generation, status, requested)
        if found:
            with self._guard:
                self._poked.pop(uid, None)  # the reconcile about to run answers the requests so far
        return found

    def _due(self, uid: str, generation: int, status: dict[str, object], requested: str | None) -> bool:
        """Whether the tick should reconcile now. ``status`` is the body's, for what this process never saw;
        ``requested`` the resource's reconcile-requested-at annotation: each new value is one reconcile now,
        a stalled resource's included (a user asks to look again, e.g. after removing a name conflict)."""
        now = self.clock()
        with self._guard:
            entry = self._entries.get(uid)
            current = entry is not None and entry.generation == generation
            if entry is not None and current and entry.awaiting_write:
                if status.get("observedGeneration") != generation:
                    # The watch event of the acceptance's write wakes the tick; a write that never
                    # landed (kopf gave up on it) is due again, to be accepted anew.
                    return now >= entry.accept_by
                entry.awaiting_write = False
            handled = self._requested.get(uid, status.get("lastHandledReconcileAt"))
            # A request asks to look again, never to skip the generation's acceptance (Reconciling
            # written and read back before its first AWS call): until then it waits, unanswered.
            accepted = status.get("observedGeneration") == generation or current
            if requested is not None and handled != requested and accepted:
                self._requested[uid] = requested
                return True
            if entry is not None and current:
                return now >= entry.due
            if _stalled_at(status, generation):
                return False  # stalled before this process started: only a spec change moves it
            if entry is None and status.get("observedGeneration") == generation and _in_progress(status):
                return True  # reconciled by an earlier process, mid-transition: keep its rhythm
            return self._waited(uid, generation, now, self._unrecorded_period(entry, generation, status))

    def seconds_until_due(self, uid: str, generation: int, status: dict[str, object]) -> float:
        """How long the tick may sleep before asking :meth:`due` again, if nothing pokes it first
        (inf: only a poke can make it due: stalled, or waiting for its acceptance to be read back)."""
        now = self.clock()
        with self._guard:
            entry = self._entries.get(uid)
            if entry is not None and entry.generation == generation:
                if entry.awaiting_write and status.get("observedGeneration") != generation:
                    return max(0.0, entry.accept_by - now)
                return max(0.0, entry.due - now)
            if _stalled_at(status, generation):
                return float("inf")
            period = self._unrecorded_period(entry, generation, status)
            return max(0.0, self._first_seen_at(uid, generation, now) + period - now)

    def seen(self, uid: str) -> Seen | None:
        """What the last reconcile of the resource saw of its endpoint (None: none recorded here)."""
        with self._guard:
            return self._seen.get(uid)

    def notice(self, uid: str, generation: int) -> None:
        """A watch event brought a generation this process has not accepted: due at once (the tick
        accepts it first), not after the wait for a lost change event."""
        with self._guard:
            self._first_seen[uid] = (generation, float("-inf"))

    def recorded(self, uid: str, generation: int) -> bool:
        """Whether this process recorded an outcome (an acceptance included) for this generation; an
        acceptance whose write was not read back in time counts as never recorded (accept it again)."""
        with self._guard:
            entry = self._entries.get(uid)
            if entry is None or entry.generation != generation:
                return False
            return not (entry.awaiting_write and self.clock() >= entry.accept_by)

    def _lost_after(self) -> float:
        """How long a generation's change event or its acceptance's status write may take to be seen
        before it counts as lost."""
        return 2 * self.settings.poll_interval

    def stalled(self, uid: str, generation: int, status: dict[str, object]) -> bool:
        """Whether this generation is stalled: nothing changes, no AWS call is made, until the spec does."""
        with self._guard:
            entry = self._entries.get(uid)
            if entry is not None and entry.generation == generation:
                return entry.next is Next.STALLED
        return _stalled_at(status, generation)

    def _unrecorded_period(self, entry: _Entry | None, generation: int, status: dict[str, object]) -> float:
        """How long a generation this process recorded no outcome for waits, from when it was first seen."""
        if entry is None and status.get("observedGeneration") == generation:
            return self.settings.resync_interval  # reconciled by an earlier process: its resync rhythm
        return self._lost_after()  # no watch event of ours accepted it: its event may be lost

    def _first_seen_at(self, uid: str, generation: int, now: float) -> float:
        seen_generation, first = self._first_seen.get(uid, (generation, now))
        return first if seen_generation == generation else now

    def _waited(self, uid: str, generation: int, now: float, period: float) -> bool:
        first = self._first_seen_at(uid, generation, now)
        self._first_seen[uid] = (generation, first)
        return now - first >= period

    def forget(self, uid: str) -> None:
        with self._guard:
            self._entries.pop(uid, None)
            self._requested.pop(uid, None)
            self._poked.pop(uid, None)
            self._seen.pop(uid, None)
            self._first_seen.pop(uid, None)


class Wakeups:
    """What an idle tick sleeps on: :meth:`poke` (from any thread) ends a resource's sleep at once.

    A tick clears its resource's flag, asks :meth:`Scheduler.due`, and only then sleeps: a poke
    that lands in between is never lost (both run on the event loop; pokes from other threads
    are handed to it)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flags: dict[str, asyncio.Event] = {}

    def clear(self, uid: str) -> None:
        self._loop = self._loop or asyncio.get_running_loop()
        self._flags.setdefault(uid, asyncio.Event()).clear()

    def poke(self, uid: str) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # no tick has slept yet: each looks on its first run anyway
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._set(uid)
        else:
            loop.call_soon_threadsafe(self._set, uid)

    def _set(self, uid: str) -> None:
        flag = self._flags.get(uid)
        if flag is not None:
            flag.set()

    async def sleep(self, uid: str, timeout: float, stopped: Awaitable[object]) -> None:
        """Until poked, ``stopped`` completes (kopf stops the resource's tick), or ``timeout`` passes."""
        flag = self._flags.setdefault(uid, asyncio.Event())
        waits = {asyncio.ensure_future(flag.wait()), asyncio.ensure_future(stopped)}
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    def forget(self, uid: str) -> None:
        self._flags.pop(uid, None)


def _conditions(status: dict[str, object]) -> list[dict[str, object]]:
    found = status.get("conditions")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def _stalled_at(status: dict[str, object], generation: int) -> bool:
    return status.get("observedGeneration") == generation and any(
        c.get("type") == "Stalled" and c.get("status") == "True" for c in _conditions(status)
    )


def _in_progress(status: dict[str, object]) -> bool:
    return any(c.get("type") == "Reconciling" and c.get("status") == "True" for c in _conditions(status))
