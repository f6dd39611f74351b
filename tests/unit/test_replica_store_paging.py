"""The store's page-by-page walk over every key it holds (the rehoming scan
after a cluster map change), on a real RocksDB."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.replica_store import ReplicaStore
from tristore.config import NodeSection
from tristore.model import Change, ObjectVersion
from tristore.stamps import Stamp

pytestmark = pytest.mark.unit


def test_held_keys_pages_through_every_key(tmp_path: Path) -> None:
    # Keys that are prefixes of others (k1, k10) and two families: current
    # records of plain keys, versions of versioned ones.
    names = [("b1", k) for k in ("k1", "k10", "k100", "k2", "x")] + [("b2", "k1"), ("b2", "y")]

    async def go() -> set[tuple[str, str]]:
        store = ReplicaStore(tmp_path / "n", NodeSection(), lambda: 1_000)
        store.start(asyncio.get_running_loop())
        try:
            for i, (bucket, key) in enumerate(names):
                v = ObjectVersion(bucket, key, Stamp(1_000 + i, 0, 1, 1), inline=b"x", size=1)
                if bucket == "b2":
                    await store.commit(Change(bucket, key, v.stamp, versions=(v,)))
                else:
                    await store.commit(Change.of(v))
            seen: list[tuple[str, str]] = []
            async for page in store.held_keys(limit=2):
                assert 0 < len(page) <= 2
                seen += [(b, k) for b, k, _ in page]
            return set(seen)
        finally:
            store.close()

    assert asyncio.run(go()) == set(names)
