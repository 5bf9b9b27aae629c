"""Resharding: which of our finalizers a replica removes, holds or finalizes under, from the finalizers alone."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from djl_operator.logs import RoutineKopfLines
from djl_operator.sharding import FINALIZER, Adoption, adoption, drop_stale, finalizer_name, is_ours

PLAIN = FINALIZER
S0, S1, S2 = (f"{FINALIZER}-shard-{i}" for i in range(3))
OTHER = "example.com/keep-me"


def test_finalizer_names() -> None:
    assert finalizer_name(0, 1) == "serving.djl-operator.io/finalizer"
    assert [finalizer_name(i, 3) for i in range(3)] == [S0, S1, S2]


@pytest.mark.parametrize(
    ("finalizer", "ours"),
    [
        (PLAIN, True),
        (S0, True),
        (f"{FINALIZER}-shard-12", True),
        (f"{FINALIZER}-shard-", False),
        (f"{FINALIZER}-shard-x", False),
        (f"{FINALIZER}-shard-1/extra", False),
        (f"{FINALIZER}s", False),
        ("serving.djl-operator.io/other", False),
        ("kopf.zalando.org/KopfFinalizerMarker", False),
        (OTHER, False),
        (f"{FINALIZER}-shard-\u0661", False),  # a non-ASCII digit is no index of ours
    ],
)
def test_which_finalizers_are_ours(finalizer: str, ours: bool) -> None:
    assert is_ours(finalizer) is ours


@pytest.mark.parametrize(
    ("finalizers", "shard", "index", "count", "expected"),
    [
        # The owner with its own on removes every other of ours, never anyone else's.
        ([S0], 0, 0, 3, Adoption()),
        ([S0, S2], 2, 2, 3, Adoption(remove=(S0,))),  # 2 -> 3 shards: moved from shard 0
        ([OTHER, S1, S0, PLAIN], 0, 0, 2, Adoption(remove=(S1, PLAIN))),
        ([S2, S1], 1, 1, 2, Adoption(remove=(S2,))),  # 3 -> 2 shards: shard 2 is gone
        ([S1, PLAIN], 0, 0, 1, Adoption(remove=(S1,))),  # n -> 1 shard: the plain finalizer
        ([PLAIN, S0], 0, 0, 2, Adoption(remove=(PLAIN,))),  # 1 -> n shards
        ([PLAIN, OTHER], 0, 0, 1, Adoption()),
        # The owner without its own (kopf adds it first; deleting, it cannot be added any more).
        ([S0], 2, 2, 3, Adoption(orphaned=True)),
        ([OTHER, S2], 1, 1, 2, Adoption(orphaned=True)),
        ([OTHER], 1, 1, 2, Adoption()),  # nothing of ours: nothing to finalize (kopf's own rules)
        ([], 0, 0, 1, Adoption()),
        # Another shard's resource: keep this replica's finalizer until the owner's is on.
        ([S0], 2, 0, 3, Adoption(hold=True)),
        ([S0, OTHER], 2, 0, 3, Adoption(hold=True)),
        ([S0, S2], 2, 0, 3, Adoption()),  # the owner's is on: kopf may drop ours
        ([S1], 2, 0, 3, Adoption()),  # not ours to hold, nor to remove
        ([PLAIN], 1, 0, 2, Adoption()),
    ],
)
def test_adoption(finalizers: list[str], shard: int, index: int, count: int, expected: Adoption) -> None:
    assert adoption(finalizers, shard, index, count) == expected


def _dropped(finalizers: list[str] | None, index: int, count: int, *, orphaned: bool = False) -> Any:
    body: dict[str, Any] = {"metadata": {"name": "x"} if finalizers is None else {"finalizers": finalizers}}
    drop_stale(body, index, count, orphaned=orphaned)
    return body["metadata"].get("finalizers", "absent")


@pytest.mark.parametrize(
    ("finalizers", "index", "count", "orphaned", "left"),
    [
        ([S0, OTHER, S2], 2, 3, False, [OTHER, S2]),
        ([S2, S0, S1, PLAIN], 2, 3, False, [S2]),
        ([S0, S2], 0, 3, False, [S0]),
        ([S0], 2, 3, False, [S0]),  # its own is not on: nothing is removed
        ([S0, OTHER], 2, 3, True, [OTHER]),  # orphaned and finalized: ours go, others' stay
        ([S0, PLAIN], 2, 3, True, "absent"),  # the last one: no empty list left (as kopf does)
        ([OTHER], 0, 2, False, [OTHER]),
        (None, 0, 2, True, "absent"),
    ],
)
def test_drop_stale(finalizers: list[str] | None, index: int, count: int, orphaned: bool, left: Any) -> None:
    assert _dropped(finalizers, index, count, orphaned=orphaned) == left


@pytest.mark.parametrize(
    ("level", "message", "shown_as"),
    [
        (logging.ERROR, "Handler 'wait_for_owner' failed temporarily: shard 2 finalizes this resource", "INFO"),
        (logging.ERROR, "Handler 'delete_endpoint' failed temporarily: deleting endpoint e", "INFO"),
        (logging.INFO, "Handler 'finalize_orphan' succeeded.", "DEBUG"),
        (logging.INFO, "Handler 'wake' succeeded.", "DEBUG"),  # every watch event wakes a tick
        (logging.ERROR, "Handler 'wake' failed with an exception. Will ignore.", "ERROR"),
        (logging.ERROR, "Handler 'finalize_orphan' failed with an exception. Will ignore.", "ERROR"),
        (logging.ERROR, "Handler 'wait_for_owner' failed with an exception. Will retry.", "ERROR"),
    ],
)
def test_waiting_for_the_new_shard_is_not_an_error_in_logs(level: int, message: str, shown_as: str) -> None:
    record = logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)
    RoutineKopfLines().filter(record)
    assert record.levelname == shown_as
