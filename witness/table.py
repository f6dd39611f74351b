"""The witness's whole state: an in-memory map from key to newest stamp.

Stamps are kept as their 16-byte encoding, whose byte order is stamp order
(:mod:`tristore.stamps`), so nothing is decoded on the hot path. The map is
bounded: past ``max_keys`` the least recently written keys are forgotten, and a
forgotten key is simply unknown again, which readers treat as "ask the nodes".

Forgetting keeps the incarnation, so the incarnation fence does not stop a late
record (a write's, or a read's that finished a write) that was sent before the
key was forgotten and carries an older stamp than the one forgotten: taken, it
would make the witness answer that older stamp, and a reader holding it in its
cache would serve it after a newer write was acknowledged. So the table keeps,
per slot of keys (a hash of the key), the newest stamp it forgot, and takes a
record of a key it does not know only at or above that floor (the same
stamp is the same version of the same key). Below it the key stays
unknown, which is always safe (tests/unit/test_protocol_model.py has the trace).

Why that is enough: a reader trusts a stamp only from a majority check, and a
check answers unknown if any member does not know the key. A member that
forgot the key takes it back only at or above the newest stamp forgotten in
its slot, which is at or above everything it had been told of the key; a
record below it (late, from before the eviction) leaves the key unknown. So
no member ever answers a stamp of the key older than one it answered before
(per incarnation; a restart is fenced). The model checker explores the
eviction steps (and a second key raising the shared floor) with the floor
on, clean, and with it off finds the stale read (tests/unit/test_modelcheck.py).

:meth:`WitnessTable.forget` is an eviction on request, for a removal the nodes
collect (node/tombstones.py): the key goes, and its slot's floor rises to just
*above* the forgotten stamp, so that not even a record of that same stamp (a
late one, or a read finishing a copy of the removal a node still held) makes
the witness answer it again; only a newer write does.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from tristore.stamps import ENCODED_SIZE

UNKNOWN = bytes(ENCODED_SIZE)
#: Eviction floors kept: one per slot of keys (a power of two). Keys sharing a
#: slot share a floor, which is only ever more careful than one per key.
FLOOR_SLOTS = 1 << 16


def new_incarnation() -> int:
    # 48 bits: unique enough across restarts, and exact as a Prometheus float.
    return int.from_bytes(os.urandom(6), "big") or 1


class WitnessTable:
    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.incarnation = new_incarnation()
        self._stamps: OrderedDict[bytes, bytes] = OrderedDict()
        #: Per slot, the newest stamp forgotten (all zero: none yet).
        self._floors: list[bytes] = [UNKNOWN] * FLOOR_SLOTS

    def __len__(self) -> int:
        return len(self._stamps)

    def record(
        self, keys: list[bytes], stamps: bytes, incarnations: list[int]
    ) -> tuple[list[int], int, int]:
        """Keep the larger stamp of each key whose sender knew this incarnation
        (of a key not known, only one at or above its slot's eviction floor).

        Returns the indexes refused (meant for another incarnation), how many
        keys were forgotten to stay within ``max_keys``, and how many records of
        keys not known were left out for being at or below the eviction floor
        (the sender is not told: "unknown" is always a safe answer). A record meant for an
        earlier incarnation may be older than what that incarnation knew of the
        key; taking it would make a restarted witness answer a stale stamp
        instead of "unknown".
        """
        if len(stamps) != ENCODED_SIZE * len(keys):
            raise ValueError(f"{len(keys)} keys need {ENCODED_SIZE * len(keys)} bytes of stamps")
        if len(incarnations) != len(keys):
            raise ValueError(f"{len(keys)} keys need {len(keys)} incarnations")
        table = self._stamps
        floors, mask = self._floors, FLOOR_SLOTS - 1
        refused: list[int] = []
        below = 0
        for i, key in enumerate(keys):
            if incarnations[i] != self.incarnation:
                refused.append(i)
                continue
            stamp = stamps[i * ENCODED_SIZE : (i + 1) * ENCODED_SIZE]
            held = table.get(key)
            if held is None:
                if stamp >= floors[hash(key) & mask]:
                    table[key] = stamp
                else:
                    below += 1
            elif stamp > held:
                table[key] = stamp
                table.move_to_end(key)
        evicted = 0
        while len(table) > self.max_keys:
            key, stamp = table.popitem(last=False)
            slot = hash(key) & mask
            if stamp > floors[slot]:
                floors[slot] = stamp
            evicted += 1
        return refused, evicted, below

    def forget(self, keys: list[bytes], stamps: bytes) -> list[int]:
        """Forget each key whose stamp here is at or below the one given (or
        that is not known), and raise its slot's floor above that stamp.
        Returns the indexes of the keys kept: this witness holds a newer stamp."""
        if len(stamps) != ENCODED_SIZE * len(keys):
            raise ValueError(f"{len(keys)} keys need {ENCODED_SIZE * len(keys)} bytes of stamps")
        floors, mask = self._floors, FLOOR_SLOTS - 1
        newer: list[int] = []
        for i, key in enumerate(keys):
            stamp = stamps[i * ENCODED_SIZE : (i + 1) * ENCODED_SIZE]
            held = self._stamps.get(key)
            if held is not None and held > stamp:
                newer.append(i)
                continue
            self._stamps.pop(key, None)
            above = _successor(stamp)
            slot = hash(key) & mask
            if above > floors[slot]:
                floors[slot] = above
        return newer

    def check(self, keys: list[bytes]) -> tuple[bytes, int]:
        """Stamps of ``keys`` in order (all-zero for unknown) and how many were unknown."""
        get = self._stamps.get
        out = [get(k, UNKNOWN) for k in keys]
        return b"".join(out), out.count(UNKNOWN)


def _successor(stamp: bytes) -> bytes:
    """The smallest encoded stamp above ``stamp`` (the encoding is a big-endian number)."""
    value = int.from_bytes(stamp, "big") + 1
    if value >= 1 << (8 * ENCODED_SIZE):
        return stamp  # the largest stamp: nothing is above it
    return value.to_bytes(ENCODED_SIZE, "big")
