"""The cluster map: changes, epochs, persistence format, placement by state."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tristore import config
from tristore.clustermap import DRAIN, REMOVE, UNDRAIN, ClusterMap
from tristore.errors import ConditionalRequestConflict, InvalidArgument
from tristore.placement import Placer

from .clusters import node_table

pytestmark = pytest.mark.unit

AZS = ("az-a", "az-b", "az-c")
KEYS = [("bucket", f"key-{i}") for i in range(3000)]


def _cfg(per_az: int = 2) -> config.ClusterConfig:
    return config.parse({"nodes": node_table(AZS, per_az)}, env={})


def test_each_change_raises_the_epoch_by_one() -> None:
    cfg = _cfg()
    m0 = ClusterMap.of(cfg)
    name = cfg.nodes[0].name
    m1 = m0.changed(name, DRAIN)
    assert m1.epoch == m0.epoch + 1 and m1.node(name).state == config.DRAINING
    m2 = m1.changed(name, UNDRAIN)
    assert m2.epoch == m0.epoch + 2 and m2.node(name).state == config.ACTIVE
    m3 = m2.changed(name, REMOVE)
    assert m3.epoch == m0.epoch + 3 and not m3.has(name)
    # Others untouched.
    assert [n for n in m3.nodes] == [n for n in m0.nodes if n.name != name]
    assert m3.apply_to(cfg).nodes == m3.nodes and m3.apply_to(cfg).cluster.epoch == m3.epoch


def test_a_change_to_the_state_a_node_is_in_is_no_change() -> None:
    m = ClusterMap.of(_cfg())
    assert m.changed("a1", UNDRAIN) is m
    drained = m.changed("a1", DRAIN)
    assert drained.changed("a1", DRAIN) is drained


def test_changes_that_would_break_an_az_are_refused() -> None:
    one = _cfg(per_az=1)
    m = ClusterMap.of(one)
    with pytest.raises(InvalidArgument, match="last node of az-a"):
        m.changed(one.nodes[0].name, REMOVE)
    # Draining the only node of an AZ leaves it no node to take its writes.
    with pytest.raises(InvalidArgument, match="needs an active node"):
        m.changed(one.nodes[0].name, DRAIN).apply_to(one)
    with pytest.raises(InvalidArgument, match="no node named"):
        m.changed("nope", DRAIN)
    with pytest.raises(InvalidArgument, match="unknown action"):
        m.changed(one.nodes[0].name, "explode")


def test_expected_epoch() -> None:
    m = ClusterMap.of(_cfg())
    m.check_epoch(0)
    m.check_epoch(m.epoch)
    with pytest.raises(ConditionalRequestConflict, match="epoch"):
        m.check_epoch(m.epoch + 1)


def test_persisted_form_round_trips_and_bad_text_is_refused() -> None:
    m = ClusterMap.of(_cfg()).changed("a1", DRAIN)
    assert ClusterMap.loads(m.dumps()) == m
    for bad in ("", "{", '{"epoch": 2}', '{"epoch": "x", "nodes": []}', '{"nodes": [{}]}'):
        with pytest.raises(InvalidArgument, match="not a cluster map"):
            ClusterMap.loads(bad)


def test_two_maps_of_one_epoch_are_ordered_the_same_everywhere() -> None:
    m = ClusterMap.of(_cfg())
    x, y = m.changed("a1", DRAIN), m.changed("b1", DRAIN)
    assert x.epoch == y.epoch and x.order != y.order
    assert (x.order > y.order) == (ClusterMap.loads(x.dumps()).order > y.order)
    assert m.order < x.order and m.order < y.order


def test_a_node_state_is_optional_in_the_file_and_checked() -> None:
    table = node_table(AZS, 2)
    assert all(n.state == config.ACTIVE for n in config.parse({"nodes": table}, env={}).nodes)
    table[0]["state"] = "resting"
    with pytest.raises(InvalidArgument, match="state 'resting'"):
        config.parse({"nodes": table}, env={})


def test_a_draining_node_is_home_to_nothing_and_the_last_fallback() -> None:
    cfg = _cfg(per_az=3)
    placer = Placer(cfg)
    before = {k: placer.place(*k) for k in KEYS}
    drained = ClusterMap.of(cfg).changed("a1", DRAIN)
    placer.update(drained.nodes, drained.epoch)
    assert placer.epoch == drained.epoch
    moved = 0
    for k in KEYS:
        for old, new in zip(before[k].azs, placer.place(*k).azs, strict=True):
            assert old.az == new.az  # AZs never change with a node's state
            assert new.home.name != "a1"
            if old.az == "az-a":
                assert new.nodes[-1].name == "a1"
                moved += old.home.name == "a1"
                if old.home.name != "a1":
                    assert new.home == old.home  # only a1's keys move
    assert moved > len(KEYS) // 5
    # Undrained, every key has its old home again.
    back = drained.changed("a1", UNDRAIN)
    placer.update(back.nodes, back.epoch)
    assert all(
        [a.home for a in placer.place(*k).azs] == [a.home for a in before[k].azs] for k in KEYS
    )


def test_removing_a_node_moves_only_its_keys() -> None:
    cfg = _cfg(per_az=3)
    placer = Placer(cfg)
    before = {k: [a.home.name for a in placer.place(*k).azs] for k in KEYS}
    gone = ClusterMap.of(cfg).changed("b2", DRAIN).changed("b2", REMOVE)
    placer.update(gone.nodes, gone.epoch)
    assert "b2" not in {n.name for n in placer.nodes}
    for k in KEYS:
        after = [a.home.name for a in placer.place(*k).azs]
        changed = [(o, n) for o, n in zip(before[k], after, strict=True) if o != n]
        assert all(o == "b2" for o, _ in changed)


def test_placer_node_lookup() -> None:
    cfg = _cfg()
    placer = Placer(cfg)
    assert placer.node_named("a1") == cfg.node_named("a1")
    assert placer.node_named("zz") is None
    placer.update(
        tuple(replace(n, state="draining") if n.name == "a1" else n for n in cfg.nodes), 9
    )
    node = placer.node_named("a1")
    assert node is not None and node.state == "draining"
