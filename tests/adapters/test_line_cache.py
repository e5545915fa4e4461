"""The line cache: recently read chunks' lines within a byte bound, least recently used
first out; lines that can only be held stay outside the bound until released."""

from __future__ import annotations

from allsmi.adapters.recording.cache import LineCache


class Key:
    """Any hashable object stands for a chunk (hashed by identity, as chunks are)."""


def lines(n: int, size: int = 100) -> list[bytes]:
    return [b"x" * size] * n


def test_the_bound_is_kept_by_dropping_the_least_recently_used() -> None:
    cache = LineCache(limit=1000)
    a, b, c = Key(), Key(), Key()
    cache.put(a, lines(4))
    cache.put(b, lines(4))
    assert cache.get(a) is not None  # a is now the most recent
    cache.put(c, lines(4))
    assert cache.size <= 1000
    assert cache.get(b) is None and cache.get(a) is not None and cache.get(c) is not None


def test_a_chunk_larger_than_the_bound_is_still_kept_alone() -> None:
    cache = LineCache(limit=10)
    a, b = Key(), Key()
    cache.put(a, lines(1))
    cache.put(b, lines(3))
    assert cache.get(a) is None and cache.get(b) == lines(3) and cache.size == 300


def test_putting_a_chunk_again_counts_its_lines_once() -> None:
    cache = LineCache(limit=10_000)
    a = Key()
    cache.put(a, lines(4))
    cache.put(a, lines(2))
    assert cache.size == 200


def test_forgetting_and_clearing_give_the_bytes_back() -> None:
    cache = LineCache(limit=10_000)
    a, b = Key(), Key()
    cache.put(a, lines(4))
    cache.put(b, lines(2))
    cache.forget([a])
    assert cache.get(a) is None and cache.size == 200
    cache.clear()
    assert cache.get(b) is None and cache.size == 0


def test_held_lines_are_outside_the_bound_never_dropped_and_may_grow() -> None:
    cache = LineCache(limit=100)
    growing, other = Key(), Key()
    held = lines(2)
    cache.hold(growing, held)
    held.append(b"more")  # the follower adds to the very list
    for _ in range(5):
        cache.put(Key(), lines(1))
    cache.clear()
    assert cache.get(growing) is held and cache.size == 0
    assert cache.holding() == [growing]
    cache.put(other, lines(1))
    cache.release(growing)
    assert cache.get(growing) is None and cache.get(other) is not None


def test_holding_a_cached_chunk_moves_its_lines_out_of_the_bound() -> None:
    cache = LineCache(limit=10_000)
    a = Key()
    cache.put(a, lines(3))
    cache.hold(a, lines(3))
    assert cache.size == 0 and cache.get(a) == lines(3)
