"""The cluster map: which nodes there are, in which AZ, in which state, at which epoch.

The map starts as the ``[[nodes]]`` of the config file with ``[cluster] epoch``.
Operators change it at run time (``tristore admin drain|undrain|decommission``):
each change makes a new map with the epoch one higher. Nodes keep the newest
map they have seen in their data directory and pass it to peers that hold an
older one, so a change reaches every node, a restarted one included, without a
restart. A map is taken only when its epoch is higher than the one held; two
different maps of one epoch (two changes made at once on two nodes) are
ordered by their digest, so every node ends on the same one.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from tristore import config
from tristore.config import ACTIVE, DRAINING, ClusterConfig, NodeSpec
from tristore.errors import ConditionalRequestConflict, InvalidArgument

DRAIN = "drain"
UNDRAIN = "undrain"
REMOVE = "remove"
ACTIONS = (DRAIN, UNDRAIN, REMOVE)


@dataclass(frozen=True)
class ClusterMap:
    epoch: int
    nodes: tuple[NodeSpec, ...]

    @classmethod
    def of(cls, cfg: ClusterConfig) -> ClusterMap:
        return cls(cfg.cluster.epoch, cfg.nodes)

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise InvalidArgument(
            f"no node named {name!r} in the cluster map at epoch {self.epoch} "
            f"(nodes: {', '.join(n.name for n in self.nodes)})"
        )

    @functools.cached_property
    def order(self) -> tuple[int, str]:
        """Maps compare by epoch, then (two changes made at once) by digest."""
        return self.epoch, hashlib.sha256(self.dumps().encode()).hexdigest()

    def has(self, name: str) -> bool:
        return any(n.name == name for n in self.nodes)

    def apply_to(self, cfg: ClusterConfig) -> ClusterConfig:
        """``cfg`` with this map's nodes and epoch, validated like a config file."""
        new = replace(cfg, cluster=replace(cfg.cluster, epoch=self.epoch), nodes=self.nodes)
        config.validate(new)
        return new

    def changed(self, name: str, action: str) -> ClusterMap:
        """The next map (epoch + 1) after draining, undraining or removing
        ``name``; this map itself when the node is in that state already."""
        spec = self.node(name)
        if (action, spec.state) in ((DRAIN, DRAINING), (UNDRAIN, ACTIVE)):
            return self
        if action == DRAIN:
            nodes = tuple(replace(n, state=DRAINING) if n.name == name else n for n in self.nodes)
        elif action == UNDRAIN:
            nodes = tuple(replace(n, state=ACTIVE) if n.name == name else n for n in self.nodes)
        elif action == REMOVE:
            nodes = tuple(n for n in self.nodes if n.name != name)
            if not any(n.az == spec.az for n in nodes):
                raise InvalidArgument(
                    f"{name} is the last node of {spec.az}; add a node to {spec.az} first "
                    "(every key keeps a copy in each of three AZs)"
                )
        else:
            raise InvalidArgument(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
        return ClusterMap(self.epoch + 1, nodes)

    def check_epoch(self, expect: int) -> None:
        if expect and expect != self.epoch:
            raise ConditionalRequestConflict(
                f"the cluster map is at epoch {self.epoch}, not {expect}: someone changed it "
                "meanwhile; look at `tristore admin status` and try again"
            )

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "nodes": [dataclasses.asdict(n) for n in self.nodes]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, raw: Any) -> ClusterMap:
        try:
            epoch = int(raw["epoch"])
            nodes = tuple(NodeSpec(**n) for n in raw["nodes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"not a cluster map: {exc}") from None
        return cls(epoch, nodes)

    @classmethod
    def loads(cls, text: str) -> ClusterMap:
        try:
            return cls.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"not a cluster map: {exc}") from None


@dataclass(frozen=True)
class MapChange:
    """What ``ChangeNode`` answered: the new map, who took it at once, who did not."""

    map: ClusterMap
    acked: tuple[str, ...]
    not_reached: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "map": self.map.to_json(),
            "acked": list(self.acked),
            "not_reached": list(self.not_reached),
        }


@dataclass(frozen=True)
class NodeConfig:
    """One node's effective configuration (its file, with the map it holds now)."""

    node: str
    epoch: int
    toml: str
