"""Which replica reconciles a resource: a stable hash of its uid, modulo the number of shards.

Each replica (``--shard-index i --shard-count n``) serves the resources of shard ``i`` alone, so
``n`` replicas share the work and each resource is reconciled by exactly one of them. The uid
never changes, so a resource stays on its shard for life; changing ``n`` moves resources between
shards, which is safe (ownership is proven by AWS tags, not by who reconciled last) as long as
every replica runs with the same ``n``.

Each shard has its own finalizer (kopf drops its finalizer from every resource none of its delete
handlers serves, so a shared one would let a shard strip another's). A moved resource still carries
its previous shard's finalizer; :func:`adoption` decides, from the resource's finalizers alone, what
each replica does about it: the new owner removes every other finalizer of ours once its own is on
(or, for a resource deleted before its own got on, finalizes it and then removes them), and a
replica whose finalizer is on another shard's resource keeps it until the owner's is on, so the
resource is never without one of ours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

FINALIZER = "serving.djl-operator.io/finalizer"  # api.GROUP's; with shards, FINALIZER-shard-<i>
_SHARD_SUFFIX = "-shard-"


def shard_of(uid: str, count: int) -> int:
    """The shard of a resource uid: the same in every process, on every platform (not ``hash()``)."""
    if count < 1:
        raise ValueError(f"shard count must be at least 1, got {count}")
    return int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big") % count


def finalizer_name(index: int, count: int) -> str:
    """The finalizer of shard ``index`` of ``count`` (the plain one with a single shard)."""
    return FINALIZER if count == 1 else f"{FINALIZER}{_SHARD_SUFFIX}{index}"


def is_ours(finalizer: str) -> bool:
    """Whether a finalizer is one this operator puts on (any shard, any count); others' are never touched."""
    if finalizer == FINALIZER:
        return True
    index = finalizer.removeprefix(FINALIZER + _SHARD_SUFFIX)
    return index != finalizer and index.isascii() and index.isdigit()


@dataclass(frozen=True)
class Adoption:
    """What one replica does about a resource's finalizers."""

    # Our finalizers that are not this replica's, on a resource it serves with its own on: remove them.
    remove: tuple[str, ...] = ()
    # A resource it serves whose own finalizer is not on, but another of ours is: if it is being
    # deleted (no finalizer can be added then), this replica finalizes it and then removes them.
    orphaned: bool = False
    # Another shard's resource carrying this replica's finalizer while the owner's is not on yet:
    # keep it (kopf would drop it as unserved) so that the resource is never unprotected.
    hold: bool = False


def adoption(finalizers: Iterable[str], shard: int, index: int, count: int) -> Adoption:
    """The decision for a resource in ``shard`` (its shard under ``count``) carrying ``finalizers``,
    seen by replica ``index`` of ``count``."""
    present = list(finalizers)
    own = finalizer_name(index, count)
    if shard != index:
        owner = finalizer_name(shard, count)
        return Adoption(hold=own in present and owner not in present)
    others = tuple(f for f in present if is_ours(f) and f != own)
    if own in present:
        return Adoption(remove=others)
    return Adoption(orphaned=bool(others))


def drop_stale(body: MutableMapping[str, Any], index: int, count: int, *, orphaned: bool = False) -> None:
    """Remove our other finalizers from a body in place, given this replica's own is on it (or, with
    ``orphaned``, once the AWS side of a resource deleted before its own got on is gone).

    A kopf patch function: kopf applies it to the freshest body it has and writes the difference as a
    JSON patch tested against the resourceVersion, after its own finalizer changes, so the two compose.
    """
    metadata = body.get("metadata") or {}
    present = list(metadata.get("finalizers") or [])
    own = finalizer_name(index, count)
    if own not in present and not orphaned:
        return  # not protected by this replica's finalizer (yet): removing another would expose it
    kept = [f for f in present if f == own or not is_ours(f)]
    if kept == present:
        return
    if kept:
        metadata["finalizers"] = kept
    else:
        del metadata["finalizers"]  # as kopf's own allow_deletion leaves it
