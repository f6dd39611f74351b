"""Free space on a node's data disk: new data stops before the disk fills.

RocksDB that runs out of space in the middle of a write keeps failing every
later write until it is reopened (its background error is sticky), and a
half-written store is the last thing a full disk should cost. So a node keeps a
reserve: while the filesystem of its data directory has less than ``[node]
disk_reserve_bytes`` free, it refuses new data (commits and staged bodies,
``StorageFull`` naming the node) and goes on serving reads and freeing space
(garbage collection, change-log trimming, hint handoff). Coordinators send a
refused write to another node of the AZ with a hint, as for a dead node
(node/quorum.py). Writes are taken again by themselves once ``[node]
disk_resume_bytes`` more than the reserve are free.

The free space is looked at every ``[node] disk_check_s`` while the node
writes (or is full, waiting for space); a node that wrote nothing for a whole
interval looks only every ``disk_idle_check_s``, or at once when it writes
again (the store tells it: a wakeup, no polling). An idle node's own use does
not change; the longer interval bounds how late it sees a disk that another
process filled.

Should RocksDB fail a write for lack of space all the same (another process
filled the disk between two checks, or the reserve is too small for what
RocksDB itself writes: WAL files, flushes, compactions), its error is sticky:
the store takes no write until it is opened again. The node then refuses
writes ("stuck", in ``/healthz``, ``admin status`` and the log) until the
same free space is back, and then restarts itself in place (the same pid,
command line and environment: tristore/server.py ``reexec``), which opens the
store afresh; RocksDB's recovery drops the write that failed half-way (it was
never acknowledged). No operator needs to step in.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from node.metrics import DISK_FREE_BYTES, DISK_FULL, DISK_REFUSALS
from tristore.errors import StorageFull
from tristore.wakeup import wait_for_any

log = logging.getLogger(__name__)


def is_out_of_space(exc: BaseException) -> bool:
    """Whether a storage error says the disk is full (RocksDB words it so)."""
    text = str(exc)
    return "No space left on device" in text or "NoSpace" in text


class DiskWatch:
    def __init__(self, node: str, path: Path, reserve_bytes: int, resume_bytes: int) -> None:
        self.node = node
        self.path = path
        self.reserve_bytes = reserve_bytes
        self.resume_bytes = resume_bytes
        #: Bytes free for this process at the last check.
        self.free = -1
        #: Whether new data is refused.
        self.full = False
        #: RocksDB itself failed a write for lack of space: only a restart
        #: (once space is freed) makes the store take writes again.
        self.stuck = False
        #: Called once when a stuck store has its space back: the node restarts.
        self.on_space_back: Callable[[], None] | None = None
        #: Whether the store wrote since the last check (set from any thread).
        self._wrote = True
        self._written = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def note_write(self) -> None:
        """The store wrote to the disk (called from its threads): an idle
        watch looks again now, an active one stays at ``disk_check_s``."""
        if not self._wrote:
            self._wrote = True
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._written.set)

    def check(self) -> bool:
        """Look at the free space (a syscall: run it off the event loop);
        returns whether new data is refused now."""
        st = os.statvfs(self.path)
        self.free = st.f_bavail * st.f_frsize
        DISK_FREE_BYTES.set(self.free)
        if not self.full and self.free < self.reserve_bytes:
            self.full = True
            log.error(
                "node %s: %d bytes free on the disk of %s, under the reserve of %d: new "
                "data is refused (reads go on) until %d are free",
                self.node,
                self.free,
                self.path,
                self.reserve_bytes,
                self.reserve_bytes + self.resume_bytes,
            )
        elif self.full and self.free >= self.reserve_bytes + self.resume_bytes:
            if not self.stuck:
                self.full = False
                log.info("node %s: %d bytes free again: taking writes", self.node, self.free)
            elif self.on_space_back is not None:
                log.warning(
                    "node %s: %d bytes free again; its store stopped writing when the disk "
                    "was full, so the node restarts to open it again",
                    self.node,
                    self.free,
                )
                callback, self.on_space_back = self.on_space_back, None
                callback()
        DISK_FULL.set(int(self.full))
        return self.full

    async def run_forever(self, interval_s: float, idle_interval_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        while True:
            # Cleared before the check: a write from here on is after it.
            self._wrote = False
            self._written.clear()
            try:
                await asyncio.to_thread(self.check)
            except OSError as exc:
                log.warning(
                    "node %s: cannot read the free space of %s: %s", self.node, self.path, exc
                )
            await asyncio.sleep(interval_s)
            if not self._wrote and not self.full and idle_interval_s > interval_s:
                await wait_for_any([self._written], idle_interval_s - interval_s)

    def refuse_if_full(self, what: str) -> None:
        if not self.full:
            return
        DISK_REFUSALS.inc()
        if self.stuck:
            raise StorageFull(
                f"node {self.node}: its store failed a write for lack of disk space and "
                f"refuses {what} until {self.reserve_bytes + self.resume_bytes} bytes are "
                "free (it then restarts by itself); another node of its AZ takes the "
                "write meanwhile"
            )
        raise StorageFull(
            f"node {self.node}: its disk ({self.path}) has {self.free} bytes free, under "
            f"the reserve of {self.reserve_bytes}; it refuses {what} until "
            f"{self.reserve_bytes + self.resume_bytes} are free (reads go on)"
        )

    def write_failed(self, exc: BaseException) -> BaseException:
        """A write to the store failed: if for lack of space, stop taking any.
        Returns the error for the writers: StorageFull for lack of space (so
        a coordinator sends the write to another node of the AZ with a hint,
        as for any full node), else ``exc`` itself."""
        if not is_out_of_space(exc):
            return exc
        if not self.stuck:
            self.stuck = self.full = True
            DISK_FULL.set(1)
            log.error(
                "node %s: the store failed a write for lack of disk space (%s); it takes "
                "no writes until %d bytes are free, and then restarts by itself",
                self.node,
                exc,
                self.reserve_bytes + self.resume_bytes,
            )
        DISK_REFUSALS.inc()
        return StorageFull(
            f"node {self.node}: its store failed a write for lack of disk space; it refuses "
            f"writes until {self.reserve_bytes + self.resume_bytes} bytes are free (it then "
            "restarts by itself); another node of its AZ takes the write meanwhile"
        )

    @property
    def state(self) -> str:
        """ "" (writes taken), "full" or "stuck" (see :meth:`health`)."""
        return "stuck" if self.stuck else "full" if self.full else ""

    def health(self) -> str:
        """ "" when writes are taken; else what /healthz says."""
        if self.stuck:
            return (
                "disk full: the store stopped writing; the node restarts by itself once "
                f"{self.reserve_bytes + self.resume_bytes} bytes are free"
            )
        if self.full:
            return (
                f"disk full: {self.free} bytes free, under the reserve of {self.reserve_bytes}; "
                "reads served, writes refused"
            )
        return ""
