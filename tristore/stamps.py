"""Version stamps and the hybrid logical clock that issues them.

A stamp is ``(physical_ms, logical, cluster_id, node_id)``. Comparing stamps as
tuples gives a total order that holds across nodes and clusters; the node and
cluster ids break ties deterministically (last writer wins). The 16-byte
big-endian encoding sorts the same way, so it doubles as the version id.
"""

from __future__ import annotations

import struct
import threading
import time
from dataclasses import dataclass

from tristore.errors import InvalidArgument
from tristore.slots import fast_init

_FMT = struct.Struct(">QIHH")
ENCODED_SIZE = _FMT.size  # 16


@fast_init
@dataclass(frozen=True, order=True, slots=True)
class Stamp:
    physical_ms: int
    logical: int
    cluster_id: int
    node_id: int

    def encode(self) -> bytes:
        return _FMT.pack(self.physical_ms, self.logical, self.cluster_id, self.node_id)

    @classmethod
    def decode(cls, raw: bytes) -> Stamp:
        return cls(*_FMT.unpack(raw))

    @property
    def version_id(self) -> str:
        return self.encode().hex()

    @classmethod
    def from_version_id(cls, vid: str) -> Stamp:
        raw = bytes.fromhex(vid)  # ValueError on garbage: the caller maps it
        if len(raw) != ENCODED_SIZE:
            raise ValueError("version id has the wrong length")
        return cls.decode(raw)


ZERO = Stamp(0, 0, 0, 0)


def check_skew(physical_ms: int, wall_ms: int, max_skew_ms: int, whose: str) -> None:
    """Raise InvalidArgument when a stamp is more than ``max_skew_ms`` ahead of ``wall_ms``."""
    ahead = physical_ms - wall_ms
    if ahead > max_skew_ms:
        raise InvalidArgument(
            f"a stamp {ahead} ms ahead of {whose} clock was refused ([cluster] "
            f"max_clock_skew_ms is {max_skew_ms}): a clock is off, or the stamp is forged"
        )


class HybridClock:
    """A hybrid logical clock (Kulkarni et al.): never goes backwards, tracks the
    wall clock, and jumps past every stamp it observes.

    ``offset_ms`` skews the wall clock on purpose, so tests can run nodes whose
    clocks disagree by seconds. ``max_skew_ms`` bounds how far ahead of the
    wall clock a stamp it observes may be: further, and :meth:`observe` raises
    InvalidArgument rather than drag every later stamp into the future (None:
    no bound).
    """

    def __init__(
        self, cluster_id: int, node_id: int, offset_ms: int = 0, max_skew_ms: int | None = None
    ) -> None:
        self._cluster_id = cluster_id
        self._node_id = node_id
        self._offset_ms = offset_ms
        self._max_skew_ms = max_skew_ms
        self._last = (0, 0)
        self._lock = threading.Lock()

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self._offset_ms

    def now(self) -> Stamp:
        with self._lock:
            wall = self.wall_ms()
            phys, logical = self._last
            self._last = (wall, 0) if wall > phys else (phys, logical + 1)
            return Stamp(*self._last, self._cluster_id, self._node_id)

    def after(self, floor: Stamp) -> Stamp:
        """A fresh stamp strictly greater than ``floor`` (and than every earlier one)."""
        self.observe(floor)
        return self.now()

    def observe(self, seen: Stamp) -> None:
        if self._max_skew_ms is not None:
            check_skew(seen.physical_ms, self.wall_ms(), self._max_skew_ms, "this node's")
        with self._lock:
            if (seen.physical_ms, seen.logical) > self._last:
                self._last = (seen.physical_ms, seen.logical)
