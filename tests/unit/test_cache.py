"""The coordinator's metadata cache (node/cache.py): newest version per key,
LRU within a byte bound, and an entry dropped on request."""

from __future__ import annotations

import pytest

from node.cache import MetadataCache
from tristore.model import ObjectVersion
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit


def _v(key: str, ms: int, body: bytes = b"x") -> ObjectVersion:
    return ObjectVersion("b", key, Stamp(ms, 0, 1, 0), size=len(body), inline=body)


def test_an_entry_is_replaced_only_by_a_newer_version_of_its_key() -> None:
    cache = MetadataCache(1 << 20)
    cache.put(_v("k", 2))
    cache.put(_v("k", 1))
    held = cache.get("b", "k")
    assert held is not None and held.stamp.physical_ms == 2
    cache.put(_v("k", 3))
    held = cache.get("b", "k")
    assert held is not None and held.stamp.physical_ms == 3
    assert len(cache) == 1


def test_a_forgotten_key_is_read_again_and_its_bytes_are_free() -> None:
    small = MetadataCache(1 << 20)
    small.put(_v("k", 1, b"a" * 100))
    one = small._bytes
    small.put(_v("j", 1, b"a" * 100))
    small.forget("b", "k")
    assert small.get("b", "k") is None and small.get("b", "j") is not None
    assert small._bytes == one  # what k cost is counted no more
    small.forget("b", "k")  # forgetting what is not held changes nothing
    small.forget("b", "nothing")
    assert small._bytes == one and len(small) == 1
    # Once forgotten, the key takes what the next read finds, whatever its stamp.
    small.put(_v("k", 0))
    assert small.get("b", "k") is not None


def test_the_least_recently_used_entries_go_first_when_bytes_run_out() -> None:
    cost = MetadataCache(1 << 20)
    cost.put(_v("a", 1, b"z" * 1000))
    per_entry = cost._bytes
    cache = MetadataCache(per_entry * 3)
    for k in "abc":
        cache.put(_v(k, 1, b"z" * 1000))
    assert cache.get("b", "a") is not None  # a is now the most recently used
    cache.put(_v("d", 1, b"z" * 1000))
    assert cache.get("b", "b") is None
    assert all(cache.get("b", k) is not None for k in "acd")
