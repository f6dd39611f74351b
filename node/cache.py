"""The coordinator's metadata cache: finished versions, LRU, bounded by bytes.

Only versions known to be finished (acknowledged by this coordinator, or read
and confirmed at the witness) ever enter it. An entry is served only when the
witness says nothing newer was acknowledged, so the cache never has to be
invalidated for a read to be right: a stale entry is simply not used, and is
replaced on the next miss. An entry is dropped only for liveness, when a
write of its key fails or is refused (:meth:`MetadataCache.forget`).
"""

from __future__ import annotations

from collections import OrderedDict

from node.metrics import CACHE_BYTES, CACHE_ENTRIES
from tristore.model import ObjectVersion

# Rough cost of one entry beyond its key and inline body.
_OVERHEAD = 200


def _cost(v: ObjectVersion) -> int:
    meta = sum(len(k) + len(x) for k, x in v.metadata.items())
    return _OVERHEAD + len(v.bucket) + len(v.key) + meta + len(v.inline or b"")


class MetadataCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], tuple[ObjectVersion, int]] = OrderedDict()
        self._bytes = 0

    def get(self, bucket: str, key: str) -> ObjectVersion | None:
        hit = self._entries.get((bucket, key))
        if hit is None:
            return None
        self._entries.move_to_end((bucket, key))
        return hit[0]

    def put(self, v: ObjectVersion) -> None:
        """Remember ``v`` unless a newer version of its key is already held."""
        ident = (v.bucket, v.key)
        held = self._entries.get(ident)
        if held is not None:
            if held[0].stamp >= v.stamp:
                return
            self._bytes -= held[1]
        cost = _cost(v)
        if cost > self.max_bytes:
            self._entries.pop(ident, None)
        else:
            self._entries[ident] = (v, cost)
            self._entries.move_to_end(ident)
            self._bytes += cost
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        CACHE_BYTES.set(self._bytes)
        CACHE_ENTRIES.set(len(self._entries))

    def forget(self, bucket: str, key: str) -> None:
        """Drop the key's entry: the next read of it asks its replicas
        (:meth:`node.protocol.Protocol.forget` says when)."""
        held = self._entries.pop((bucket, key), None)
        if held is None:
            return
        self._bytes -= held[1]
        CACHE_BYTES.set(self._bytes)
        CACHE_ENTRIES.set(len(self._entries))

    def __len__(self) -> int:
        return len(self._entries)
