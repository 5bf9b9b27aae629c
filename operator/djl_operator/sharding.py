"""Which replica reconciles a resource: a stable hash of its uid, modulo the number of shards.

Each replica (``--shard-index i --shard-count n``) serves the resources of shard ``i`` alone, so
``n`` replicas share the work and each resource is reconciled by exactly one of them. The uid
never changes, so a resource stays on its shard for life; changing ``n`` moves resources between
shards, which is safe (ownership is proven by AWS tags, not by who reconciled last) as long as
every replica runs with the same ``n``.
"""

from __future__ import annotations

import hashlib


def shard_of(uid: str, count: int) -> int:
    """The shard of a resource uid: the same in every process, on every platform (not ``hash()``)."""
    if count < 1:
        raise ValueError(f"shard count must be at least 1, got {count}")
    return int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big") % count
