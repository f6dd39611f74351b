"""Which nodes coordinate a cluster's small writes (node/relay.py), and how
many ``tristore dev up`` asks for on a shared host."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from node.relay import WriteRelay, coordinators
from tristore import config
from tristore.cli.dev import plan_cluster, shared_host_coordinators
from tristore.door import WRITES
from tristore.errors import InvalidArgument
from tristore.placement import Placer

pytestmark = pytest.mark.unit


def _placer(tmp_path: Path, nodes_per_az: int = 2) -> tuple[Placer, config.ClusterConfig]:
    cfg = plan_cluster("relay", 1, 3, nodes_per_az, 30_000, tmp_path / "data")
    return Placer(cfg), cfg


def test_coordinators_are_spread_over_the_azs_first(tmp_path: Path) -> None:
    placer, _ = _placer(tmp_path)
    names = [[n.name for n in coordinators(placer, k)] for k in range(7)]
    assert names == [
        [],
        ["a1"],
        ["a1", "b1"],
        ["a1", "b1", "c1"],
        ["a1", "b1", "c1", "a2"],
        ["a1", "b1", "c1", "a2", "b2"],
        ["a1", "b1", "c1", "a2", "b2", "c2"],
    ]
    assert [n.name for n in coordinators(placer, 99)] == names[6]


def test_a_draining_node_coordinates_nothing(tmp_path: Path) -> None:
    placer, cfg = _placer(tmp_path)
    nodes = tuple(replace(n, state="draining") if n.name == "a1" else n for n in cfg.nodes)
    placer.update(nodes, cfg.cluster.epoch + 1)
    assert [n.name for n in coordinators(placer, 1)] == ["a2"]
    assert [n.name for n in coordinators(placer, 3)] == ["a2", "b1", "c1"]


def test_a_coordinator_relays_nothing_and_a_cluster_without_coordinators_nothing_at_all(
    tmp_path: Path,
) -> None:
    placer, cfg = _placer(tmp_path)
    spec = {n.name: n for n in cfg.nodes}

    def relay(name: str, count: int) -> WriteRelay:
        return WriteRelay(placer, None, spec[name], count, cfg.node.inline_max)  # type: ignore[arg-type]

    assert relay("b2", 0).methods == frozenset()
    assert relay("b2", 1).methods == WRITES
    assert [n.name for n in relay("b2", 2)._coordinators()] == ["a1", "b1"]
    assert relay("a1", 2)._coordinators() == []
    # Whether it coordinates follows the map: with a1 draining, b2 is one of four.
    b2 = relay("b2", 4)
    assert [n.name for n in b2._coordinators()] == ["a1", "b1", "c1", "a2"]
    nodes = tuple(replace(n, state="draining") if n.name == "a1" else n for n in cfg.nodes)
    placer.update(nodes, cfg.cluster.epoch + 1)
    assert b2._coordinators() == []


@pytest.mark.parametrize(
    ("nodes", "cpus", "expected"),
    [(6, 1, 1), (6, 2, 1), (6, 4, 2), (6, 8, 4), (6, 12, 0), (6, 64, 0), (3, 4, 2), (12, 2, 1)],
)
def test_dev_up_asks_for_half_the_cores_unless_that_is_every_node(
    nodes: int, cpus: int, expected: int
) -> None:
    assert shared_host_coordinators(nodes, cpus) == expected


def test_dev_up_writes_the_setting_into_the_cluster_map(tmp_path: Path) -> None:
    _, cfg = _placer(tmp_path)
    assert cfg.node.write_coordinators == shared_host_coordinators(len(cfg.nodes))
    text = config.dump(cfg)
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    assert config.load(path).node.write_coordinators == cfg.node.write_coordinators


def test_a_negative_count_is_refused(tmp_path: Path) -> None:
    _, cfg = _placer(tmp_path)
    path = tmp_path / "cluster.toml"
    path.write_text(config.dump(replace(cfg, node=replace(cfg.node, write_coordinators=-1))))
    with pytest.raises(InvalidArgument, match="write_coordinators"):
        config.load(path)
