"""The package cache is bounded by bytes, not entries."""

from __future__ import annotations

from djl_operator import bytecache, desired


def test_evicts_least_recently_used_by_bytes() -> None:
    cache: bytecache.ByteBoundedCache[str, bytes] = bytecache.ByteBoundedCache(100, len)
    cache.put("a", b"x" * 40)
    cache.put("b", b"x" * 40)
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", b"x" * 40)  # 120 > 100: b goes
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.bytes == 80 and len(cache) == 2
    cache.put("huge", b"x" * 101)  # larger than the whole budget: never cached
    assert cache.get("huge") is None and cache.bytes == 80


def test_memoised_function_counts_key_and_value() -> None:
    calls = []

    @bytecache.bounded_by_bytes(1000, len)
    def double(key: str) -> str:
        calls.append(key)
        return key * 2

    for _ in range(3):
        assert double("k" * 100) == "k" * 200
    assert calls == ["k" * 100]
    for i in range(10):
        double(f"{i}" * 100)
    cache = double.cache  # type: ignore[attr-defined]
    assert cache.bytes <= 1000 and len(cache) == 3  # 300 bytes each (key + value)


def test_desired_package_cache_is_bounded_by_bytes() -> None:
    cache = desired._package_for.cache  # type: ignore[attr-defined]
    assert isinstance(cache, bytecache.ByteBoundedCache) and cache.max_bytes <= 64 * 2**20
