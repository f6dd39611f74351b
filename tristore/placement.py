"""Where a key lives: rendezvous hashing over the cluster map.

For each ``bucket/key``, the three AZs with the highest scores hold its replicas.
Inside each chosen AZ the nodes are ordered by their own score: the first is the
home replica, the rest are fallbacks that hold a hint while the home is away.
Adding or removing a node moves only the keys whose top choice changes.

A draining node is never a home: it comes after every active node of its AZ,
so it takes a write only when all of them are down. The map can change while a
node runs (:meth:`Placer.update`, with a higher epoch).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from tristore.config import ACTIVE, ClusterConfig, NodeSpec

REPLICA_AZS = 3


def _score(item: str, name: str) -> int:
    digest = hashlib.blake2b(f"{item}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True)
class AzReplicas:
    az: str
    #: Home first, then fallbacks in order.
    nodes: tuple[NodeSpec, ...]

    @property
    def home(self) -> NodeSpec:
        return self.nodes[0]


@dataclass(frozen=True)
class Placement:
    azs: tuple[AzReplicas, ...]


class Placer:
    def __init__(self, cfg: ClusterConfig) -> None:
        self._by_az: dict[str, tuple[NodeSpec, ...]] = {}
        self._cache: dict[str, Placement] = {}
        self.epoch = 0
        self.update(cfg.nodes, cfg.cluster.epoch)

    def update(self, nodes: Iterable[NodeSpec], epoch: int) -> None:
        """Place by a new map from now on."""
        by_az: dict[str, tuple[NodeSpec, ...]] = {}
        for spec in nodes:
            by_az[spec.az] = (*by_az.get(spec.az, ()), spec)
        self._by_az = by_az
        self._cache = {}
        self.epoch = epoch

    @property
    def nodes(self) -> tuple[NodeSpec, ...]:
        return tuple(n for az in self.azs for n in self._by_az[az])

    def node_named(self, name: str) -> NodeSpec | None:
        return next((n for n in self.nodes if n.name == name), None)

    @property
    def azs(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_az))

    def nodes_in(self, az: str) -> tuple[NodeSpec, ...]:
        return self._by_az.get(az, ())

    def home_in(self, bucket: str, key: str, az: str) -> NodeSpec | None:
        """The key's home in ``az`` (None: no copy of the key is held
        there), as :meth:`place` would give it. Asked by every replica of
        every commit (is this node the key's home?): from the placement when
        it is known here, else without the whole of it, only ``az``'s nodes
        scored when every AZ holds a copy (three AZs: most clusters)."""
        item = f"{bucket}/{key}"
        hit = self._cache.get(item)
        if hit is None and len(self._by_az) > REPLICA_AZS:
            hit = self.place(bucket, key)
        if hit is not None:
            return next((azr.home for azr in hit.azs if azr.az == az), None)
        nodes = self._by_az.get(az)
        if not nodes:
            return None
        return max(nodes, key=lambda n: (n.state == ACTIVE, _score(item, n.name)))

    def place(self, bucket: str, key: str) -> Placement:
        item = f"{bucket}/{key}"
        hit = self._cache.get(item)
        if hit is not None:
            return hit
        azs = sorted(self._by_az, key=lambda az: _score(item, az), reverse=True)[:REPLICA_AZS]
        placement = Placement(
            tuple(
                AzReplicas(
                    az,
                    tuple(
                        sorted(
                            self._by_az[az],
                            key=lambda n: (n.state == ACTIVE, _score(item, n.name)),
                            reverse=True,
                        )
                    ),
                )
                for az in azs
            )
        )
        cache = self._cache
        if len(cache) > 100_000:
            cache.clear()
        cache[item] = placement
        return placement
