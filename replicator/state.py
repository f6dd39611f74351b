"""The replicator's own RocksDB: a cursor per source node, refusals counted so
far per version and destination (so a restart does not reset the bound on
retries), and the dead-letter queue. Every call blocks (a write fsyncs): the
worker makes them from a thread.

=========  ==============================  ==========================================
prefix     key                             value
=========  ==============================  ==========================================
``c``      c | node name                   u64 BE: last change-log seq handled
``a``      a | bucket 0x00 key 0x00 vid    u64 BE: refusals so far
           0x00 destination
``q``      q | bucket 0x00 key 0x00 vid    JSON: the parked version, destination, error
           0x00 destination
=========  ==============================  ==========================================
"""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import rocksdict

from tristore import rocks
from tristore.config import NodeSection

_U64 = struct.Struct(">Q")
CURSOR = b"c"
DLQ = b"q"
ATTEMPTS = b"a"
SEP = b"\x00"


class ReplicatorState:
    def __init__(self, path: Path, cfg: NodeSection | None = None) -> None:
        """``cfg``: the RocksDB info log's bounds (``[node]``'s, as for a node's store)."""
        path.mkdir(parents=True, exist_ok=True)
        self.db = rocksdict.Rdict(str(path), rocks.options(cfg or NodeSection()))
        self._sync = rocksdict.WriteOptions()
        self._sync.sync = True
        self._lock = threading.Lock()
        #: Entries in the dead-letter queue, counted once here and kept up to
        #: date by park, unpark and trim_dlq.
        self._parked = sum(1 for _ in self._dlq_keys())

    def _dlq_keys(self) -> Iterator[bytes]:
        for k in self.db.keys(from_key=DLQ):
            if not cast(bytes, k).startswith(DLQ):
                return
            yield cast(bytes, k)

    def close(self) -> None:
        self.db.close()

    def cursor(self, node: str) -> int:
        raw = self.db.get(CURSOR + node.encode())
        return int(_U64.unpack(raw)[0]) if raw is not None else 0

    def set_cursor(self, node: str, seq: int) -> None:
        """Not synced: the cursor is written only after the entries before it
        were handled, so it is never ahead of what was done; a write lost to
        a crash of the machine leaves an older cursor, which only repeats work
        (applies are idempotent). An fsync per batch of log entries cost a
        replicator most of its CPU (rocksdict holds the GIL through it)."""
        with self._lock:
            self.db.put(CURSOR + node.encode(), _U64.pack(seq))

    @staticmethod
    def _dlq_key(bucket: str, key: str, version_id: str, destination: str) -> bytes:
        return DLQ + SEP.join(s.encode() for s in (bucket, key, version_id, destination))

    @staticmethod
    def _attempts_key(bucket: str, key: str, version_id: str, destination: str) -> bytes:
        return ATTEMPTS + SEP.join(s.encode() for s in (bucket, key, version_id, destination))

    def refusals(self, bucket: str, key: str, version_id: str, destination: str) -> int:
        raw = self.db.get(self._attempts_key(bucket, key, version_id, destination))
        return int(_U64.unpack(raw)[0]) if raw is not None else 0

    def set_refusals(
        self, bucket: str, key: str, version_id: str, destination: str, count: int
    ) -> None:
        """Durably; 0 forgets the version (it went through, or it is parked)."""
        k = self._attempts_key(bucket, key, version_id, destination)
        with self._lock:
            if count:
                self.db.put(k, _U64.pack(count), self._sync)
            elif self.db.get(k) is not None:
                self.db.delete(k, self._sync)

    def park(self, entry: dict[str, Any]) -> None:
        k = self._dlq_key(entry["bucket"], entry["key"], entry["version_id"], entry["destination"])
        with self._lock:
            self._parked += self.db.get(k) is None
            self.db.put(k, json.dumps(entry).encode(), self._sync)

    def parked_count(self) -> int:
        return self._parked

    def trim_dlq(self, max_entries: int, oldest_ms: int) -> tuple[int, int]:
        """Drop the entries parked before ``oldest_ms``, then the oldest beyond
        ``max_entries``, in one synced batch. Returns (by age, by count)."""
        with self._lock:  # nothing parks or unparks between the scan and the batch
            when: list[tuple[int, bytes]] = []
            for k, v in self.db.items(from_key=DLQ):
                if not cast(bytes, k).startswith(DLQ):
                    break
                try:
                    parked_ms = int(json.loads(cast(bytes, v)).get("parked_ms", 0))
                except (ValueError, TypeError, AttributeError):
                    parked_ms = 0  # unreadable: the oldest
                when.append((parked_ms, cast(bytes, k)))
            when.sort()
            aged = [k for ms, k in when if ms < oldest_ms]
            kept = len(when) - len(aged)
            over = [k for _, k in when[len(aged) : len(aged) + max(0, kept - max_entries)]]
            if aged or over:
                wb = rocksdict.WriteBatch(raw_mode=True)
                for k in (*aged, *over):
                    wb.delete(k)
                self.db.write(wb, self._sync)
                self._parked -= len(aged) + len(over)
        return len(aged), len(over)

    def parked(self) -> list[dict[str, Any]]:
        out = []
        for k, v in self.db.items(from_key=DLQ):
            if not cast(bytes, k).startswith(DLQ):
                break
            out.append(json.loads(cast(bytes, v)))
        return out

    def is_parked(self, bucket: str, key: str, version_id: str, destination: str) -> bool:
        return self.db.get(self._dlq_key(bucket, key, version_id, destination)) is not None

    def unpark(self, bucket: str, key: str, version_id: str, destination: str) -> bool:
        """Forget a parked version (it went through after a replay); False if it was not parked."""
        k = self._dlq_key(bucket, key, version_id, destination)
        with self._lock:
            if self.db.get(k) is None:
                return False
            self.db.delete(k, self._sync)
            self._parked -= 1
            return True
