"""The witness's whole state: an in-memory map from key to newest stamp.

Stamps are kept as their 16-byte encoding, whose byte order is stamp order
(:mod:`tristore.stamps`), so nothing is decoded on the hot path. The map is
bounded: past ``max_keys`` the least recently written keys are forgotten, and a
forgotten key is simply unknown again, which readers treat as "ask the nodes".
"""

from __future__ import annotations

import os
from collections import OrderedDict

from tristore.stamps import ENCODED_SIZE

UNKNOWN = bytes(ENCODED_SIZE)


def new_incarnation() -> int:
    # 48 bits: unique enough across restarts, and exact as a Prometheus float.
    return int.from_bytes(os.urandom(6), "big") or 1


class WitnessTable:
    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.incarnation = new_incarnation()
        self._stamps: OrderedDict[bytes, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._stamps)

    def record(
        self, keys: list[bytes], stamps: bytes, incarnations: list[int]
    ) -> tuple[list[int], int]:
        """Keep the larger stamp of each key whose sender knew this incarnation.

        Returns the indexes refused (meant for another incarnation) and how many
        keys were forgotten to stay within ``max_keys``. A record meant for an
        earlier incarnation may be older than what that incarnation knew of the
        key; taking it would make a restarted witness answer a stale stamp
        instead of "unknown".
        """
        if len(stamps) != ENCODED_SIZE * len(keys):
            raise ValueError(f"{len(keys)} keys need {ENCODED_SIZE * len(keys)} bytes of stamps")
        if len(incarnations) != len(keys):
            raise ValueError(f"{len(keys)} keys need {len(keys)} incarnations")
        table = self._stamps
        refused: list[int] = []
        for i, key in enumerate(keys):
            if incarnations[i] != self.incarnation:
                refused.append(i)
                continue
            stamp = stamps[i * ENCODED_SIZE : (i + 1) * ENCODED_SIZE]
            held = table.get(key)
            if held is None:
                table[key] = stamp
            elif stamp > held:
                table[key] = stamp
                table.move_to_end(key)
        evicted = 0
        while len(table) > self.max_keys:
            table.popitem(last=False)
            evicted += 1
        return refused, evicted

    def check(self, keys: list[bytes]) -> tuple[bytes, int]:
        """Stamps of ``keys`` in order (all-zero for unknown) and how many were unknown."""
        get = self._stamps.get
        out = [get(k, UNKNOWN) for k in keys]
        return b"".join(out), out.count(UNKNOWN)
