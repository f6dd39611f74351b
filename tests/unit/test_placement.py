"""Rendezvous placement: three AZs per key, homes and fallbacks, stability."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from tristore import config
from tristore.config import DRAINING
from tristore.placement import REPLICA_AZS, Placer

from .clusters import node_table

pytestmark = pytest.mark.unit

KEYS = [("bucket", f"key-{i}") for i in range(6000)]


def _placer(azs: tuple[str, ...], per_az: int) -> Placer:
    return Placer(config.parse({"nodes": node_table(azs, per_az)}, env={}))


@pytest.mark.parametrize(("azs", "per_az"), [(3, 1), (3, 3), (4, 2), (6, 2)])
def test_three_distinct_azs_with_all_their_nodes(azs: int, per_az: int) -> None:
    names = tuple(f"az-{chr(ord('a') + i)}" for i in range(azs))
    placer = _placer(names, per_az)
    for bucket, key in KEYS[:1000]:
        p = placer.place(bucket, key)
        chosen = [r.az for r in p.azs]
        assert len(chosen) == REPLICA_AZS == len(set(chosen))
        for r in p.azs:
            # Home first, then every other node of the AZ as a fallback.
            assert sorted(n.name for n in r.nodes) == sorted(n.name for n in placer.nodes_in(r.az))
            assert r.home == r.nodes[0]
            assert all(n.az == r.az for n in r.nodes)


def test_deterministic_across_placers() -> None:
    a = _placer(("az-a", "az-b", "az-c", "az-d"), 3)
    b = _placer(("az-a", "az-b", "az-c", "az-d"), 3)
    for bucket, key in KEYS[:500]:
        assert a.place(bucket, key) == b.place(bucket, key)


def test_bucket_and_key_both_matter() -> None:
    placer = _placer(("az-a", "az-b", "az-c", "az-d"), 3)
    homes_by_key = {tuple(r.home.name for r in placer.place("b1", k).azs) for _, k in KEYS[:200]}
    homes_by_bucket = {
        tuple(r.home.name for r in placer.place(f"bucket{i}", "k").azs) for i in range(200)
    }
    assert len(homes_by_key) > 20 and len(homes_by_bucket) > 20


def test_homes_are_balanced_across_nodes() -> None:
    placer = _placer(("az-a", "az-b", "az-c"), 3)
    homes = Counter(r.home.name for b, k in KEYS for r in placer.place(b, k).azs)
    expected = len(KEYS) / 3  # every key has a home in each AZ, 3 nodes an AZ
    assert len(homes) == 9
    for name, count in homes.items():
        assert 0.85 * expected < count < 1.15 * expected, (name, count)


def test_azs_are_balanced_when_there_are_more_than_three() -> None:
    placer = _placer(("az-a", "az-b", "az-c", "az-d", "az-e"), 1)
    used = Counter(r.az for b, k in KEYS for r in placer.place(b, k).azs)
    expected = len(KEYS) * 3 / 5
    for az, count in used.items():
        assert 0.9 * expected < count < 1.1 * expected, (az, count)


def test_adding_a_node_moves_only_the_keys_it_wins() -> None:
    before_cfg = node_table(("az-a", "az-b", "az-c"), 3)
    new = {"name": "a9", "id": 99, "az": "az-a", "grpc": "127.0.0.1:7999", "metrics": "x:1"}
    before = Placer(config.parse({"nodes": before_cfg}, env={}))
    after = Placer(config.parse({"nodes": [*before_cfg, new]}, env={}))
    moved = 0
    for bucket, key in KEYS:
        old, cur = before.place(bucket, key), after.place(bucket, key)
        assert [r.az for r in old.azs] == [r.az for r in cur.azs]
        for o, c in zip(old.azs, cur.azs, strict=True):
            if c.az != "az-a":
                assert o == c, "a node added to az-a changed another AZ"
                continue
            # The old order is kept; the new node is inserted somewhere in it.
            assert [n for n in c.nodes if n.name != "a9"] == list(o.nodes)
            if c.home.name == "a9":
                moved += 1
            else:
                assert c.home == o.home, "a key moved to a node that is not the new one"
    # About a quarter of the keys (1 of 4 nodes) move to the new node.
    assert 0.18 * len(KEYS) < moved < 0.32 * len(KEYS)


def test_removing_a_node_hands_its_keys_to_their_first_fallback() -> None:
    table = node_table(("az-a", "az-b", "az-c"), 3)
    before = Placer(config.parse({"nodes": table}, env={}))
    gone = table[0]["name"]
    after = Placer(config.parse({"nodes": table[1:]}, env={}))
    for bucket, key in KEYS[:2000]:
        for o, c in zip(before.place(bucket, key).azs, after.place(bucket, key).azs, strict=True):
            assert list(c.nodes) == [n for n in o.nodes if n.name != gone]


@pytest.mark.parametrize(("azs", "per_az"), [(3, 2), (3, 3), (4, 2)])
def test_the_home_in_an_az_is_the_one_the_placement_gives(azs: int, per_az: int) -> None:
    """``home_in`` (what each replica asks of every commit) agrees with the
    whole placement, whether that is known to the placer yet or not, with a
    draining node among them (never a home while an active node is there)."""
    names = tuple(f"az-{chr(ord('a') + i)}" for i in range(azs))
    placer = _placer(names, per_az)
    drained = placer.nodes_in("az-a")[0]
    placer.update([replace(n, state=DRAINING) if n == drained else n for n in placer.nodes], 2)
    fresh = _placer(names, per_az)
    fresh.update(placer.nodes, 2)
    for bucket, key in KEYS[:1000]:
        for az in names:
            got = placer.home_in(bucket, key, az)  # nothing known of the key yet
            want = next((r.home for r in fresh.place(bucket, key).azs if r.az == az), None)
            assert got == want, (key, az)
            assert got != drained
        placer.place(bucket, key)
        for az in names:  # and once the placement is known
            want = next((r.home for r in fresh.place(bucket, key).azs if r.az == az), None)
            assert placer.home_in(bucket, key, az) == want
