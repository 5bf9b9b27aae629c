"""A least-recently-used cache bounded by the bytes it holds, not by its entry count.

Cached packages are a few KB for most specs but up to ~MBs for big ones (64
properties of 4 KB, 64 requirements): an entry count bounds nothing.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ByteBoundedCache(Generic[K, V]):
    def __init__(self, max_bytes: int, size_of: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self.size_of = size_of
        self.bytes = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[0]

    def put(self, key: K, value: V) -> None:
        size = self.size_of(value)
        with self._lock:
            if key in self._entries:
                self.bytes -= self._entries.pop(key)[1]
            if size > self.max_bytes:
                return  # bigger than the whole budget: never cached
            self._entries[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self.bytes -= evicted

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0


def bounded_by_bytes(max_bytes: int, size_of: Callable[[Any], int]) -> Callable[[Callable[[K], V]], Callable[[K], V]]:
    """Memoise a one-argument function in a :class:`ByteBoundedCache` (``.cache`` on the wrapper).

    The key itself counts too: it is usually the spec's JSON, as large as the package's input.
    """

    def decorate(func: Callable[[K], V]) -> Callable[[K], V]:
        cache: ByteBoundedCache[K, tuple[V, int]] = ByteBoundedCache(max_bytes, lambda entry: entry[1])

        @functools.wraps(func)
        def wrapper(key: K) -> V:
            found = cache.get(key)
            if found is not None:
                return found[0]
            value = func(key)
            key_size = len(key) if isinstance(key, str | bytes) else 0
            cache.put(key, (value, size_of(value) + key_size))
            return value

        wrapper.cache = cache  # type: ignore[attr-defined]
        return wrapper

    return decorate
