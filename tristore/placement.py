"""Where a key lives: rendezvous hashing over the cluster map.

For each ``bucket/key``, the three AZs with the highest scores hold its replicas.
Inside each chosen AZ the nodes are ordered by their own score: the first is the
home replica, the rest are fallbacks that hold a hint while the home is away.
Adding or removing a node moves only the keys whose top choice changes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tristore.config import ClusterConfig, NodeSpec

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
        for spec in cfg.nodes:
            self._by_az[spec.az] = (*self._by_az.get(spec.az, ()), spec)
        self._cache: dict[str, Placement] = {}

    @property
    def azs(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_az))

    def nodes_in(self, az: str) -> tuple[NodeSpec, ...]:
        return self._by_az.get(az, ())

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
                        sorted(self._by_az[az], key=lambda n: _score(item, n.name), reverse=True)
                    ),
                )
                for az in azs
            )
        )
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[item] = placement
        return placement
